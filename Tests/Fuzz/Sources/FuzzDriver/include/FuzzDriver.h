#include <stddef.h>
#include <stdint.h>
// libFuzzer's entry for programs that own main(): SwiftPM renames an executable's main to
// <Target>_main, so each fuzz target calls the driver from there.
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
