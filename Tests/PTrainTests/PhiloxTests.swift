import Seeding
import XCTest

final class PhiloxTests: XCTestCase {
    /// Known-answer vectors of Random123's kat_vectors for philox4x32_10.
    func testKnownAnswers() {
        XCTAssertEqual(Philox4x32(key: SIMD2(0, 0)).block(SIMD4(0, 0, 0, 0)),
                       SIMD4(0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8))
        XCTAssertEqual(Philox4x32(key: SIMD2(0xffff_ffff, 0xffff_ffff)).block(SIMD4(repeating: 0xffff_ffff)),
                       SIMD4(0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd))
        XCTAssertEqual(Philox4x32(key: SIMD2(0xa409_3822, 0x299f_31d0)).block(SIMD4(0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344)),
                       SIMD4(0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1))
    }

    func testSeedIsTheKey() {
        XCTAssertEqual(Philox4x32(seed: 0x1234_5678_9abc_def0).key, SIMD2(0x9abc_def0, 0x1234_5678))
    }

    func testUniformStaysInRangeAndCoversIt() {
        let rng = Philox4x32(seed: 7)
        var seen = Set<Int>()
        for i in 0..<2000 {
            let w = rng.block(SIMD4(UInt32(i), 0, 0, 0))
            let v = Philox4x32.uniform(w[0], w[1], below: 10)
            XCTAssert((0..<10).contains(v))
            seen.insert(v)
        }
        XCTAssertEqual(seen.count, 10)
        XCTAssertEqual(Philox4x32.uniform(.max, .max, below: 60_000), 59_999)
        XCTAssertEqual(Philox4x32.uniform(0, 0, below: 60_000), 0)
    }

    /// 40,000 samples: the mean's standard error is 0.005 and the variance's about 0.007, so
    /// bounds of 0.03 are more than 4 standard errors wide.
    func testNormalsHaveUnitMoments() {
        let rng = Philox4x32(seed: 3)
        var sum = 0.0, squares = 0.0
        let blocks = 10_000
        for i in 0..<blocks {
            let z = Philox4x32.normals(rng.block(SIMD4(UInt32(i), 0, 0, 1)))
            for l in 0..<4 { sum += z[l]; squares += z[l] * z[l] }
        }
        let n = Double(blocks * 4)
        XCTAssertEqual(sum / n, 0, accuracy: 0.03)
        XCTAssertEqual(squares / n - (sum / n) * (sum / n), 1, accuracy: 0.03)
    }
}
