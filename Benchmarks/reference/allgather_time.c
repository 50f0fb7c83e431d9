// Times MPI_Allgatherv with MPI_IN_PLACE -- the call ptrain's ranks make twice per iteration --
// for totals of 64 B to 16 MB split evenly among the ranks, and prints one JSON object per size
// (median of 7 rounds of enough calls to take about 20 ms). Benchmarks/ranks.py fits latency and
// bandwidth to these for its projection. Build: mpicc -O2 allgather_time.c -o allgather_time
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int *counts = malloc(sizeof(int) * size), *displacements = malloc(sizeof(int) * size);
    for (long total = 16; total <= 4L << 20; total *= 4) {
        float *buffer = calloc(total, sizeof(float));
        for (int r = 0; r < size; r++) {
            displacements[r] = (int)(total * r / size);
            counts[r] = (int)(total * (r + 1) / size) - displacements[r];
        }
        // Calls per round: about 20 ms, agreed from a first timed call.
        double t0 = MPI_Wtime();
        MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, buffer, counts, displacements, MPI_FLOAT, MPI_COMM_WORLD);
        double once = MPI_Wtime() - t0;
        MPI_Allreduce(MPI_IN_PLACE, &once, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        int calls = once > 0.02 ? 1 : (int)(0.02 / (once > 1e-7 ? once : 1e-7));
        if (calls > 20000) calls = 20000;
        double rounds[7];
        for (int k = 0; k < 7; k++) {
            MPI_Barrier(MPI_COMM_WORLD);
            t0 = MPI_Wtime();
            for (int c = 0; c < calls; c++)
                MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, buffer, counts, displacements, MPI_FLOAT, MPI_COMM_WORLD);
            rounds[k] = (MPI_Wtime() - t0) / calls;
            MPI_Allreduce(MPI_IN_PLACE, &rounds[k], 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        }
        qsort(rounds, 7, sizeof(double), compare);
        if (rank == 0) printf("{\"ranks\": %d, \"total_bytes\": %ld, \"seconds\": %.9g}\n", size, total * 4, rounds[3]);
        free(buffer);
    }
    free(counts);
    free(displacements);
    MPI_Finalize();
    return 0;
}
