// The pipeline step under processor sharing (strategies/shared_cores.hpp, issue 22), by hand.
#include <gtest/gtest.h>

#include "strategies/shared_cores.hpp"

using namespace scaleplan::strategies;

// One stage is always runnable alone: it keeps the all-busy rate (p / w = 1), m (f + b).
TEST(SharedCores, OneStageRunsAtTheAllBusyRate) {
  const double f[] = {1.0}, b[] = {2.0};
  EXPECT_DOUBLE_EQ(shared_cores_pipeline_time(Schedule::one_f_one_b, 1, 3, f, b, 2.0), 9.0);
}

// p = 2, m = 1, f = b = 1, k = 2: only one stage is ever runnable, so each op runs at twice the
// all-busy rate: 4 ops x 0.5 = 2 (with a core per rank: 4).
TEST(SharedCores, AloneAStageRunsKTimesFaster) {
  const double f[] = {1, 1}, b[] = {1, 1};
  EXPECT_DOUBLE_EQ(shared_cores_pipeline_time(Schedule::one_f_one_b, 2, 1, f, b, 2.0), 2.0);
  EXPECT_DOUBLE_EQ(shared_cores_pipeline_time(Schedule::gpipe, 2, 1, f, b, 2.0), 2.0);
  // k = 1.5: alone a stage runs min(p / w, k) = 1.5 times faster.
  EXPECT_NEAR(shared_cores_pipeline_time(Schedule::one_f_one_b, 2, 1, f, b, 1.5), 4 / 1.5, 1e-12);
}

// p = 2, m = 2, f = b = 1, k = 2, GPipe: s0 F0 alone 0.5; s0 F1 + s1 F0 together at rate 1 until
// 1.5; s1 F1 alone 2.0; s1 B0 alone 2.5; s1 B1 + s0 B0 together 3.5; s0 B1 alone 4.0.
// 1F1B (s0: F0 F1 B0 B1, s1: F0 B0 F1 B1): 0.5, 1.5 (s0 F1 + s1 F0), 2.0 (s1 B0 alone), 3.0 (s1 F1
// + s0 B0), 3.5 (s1 B1), 4.0 (s0 B1).
TEST(SharedCores, TwoStagesTwoMicrobatchesByHand) {
  const double f[] = {1, 1}, b[] = {1, 1};
  EXPECT_DOUBLE_EQ(shared_cores_pipeline_time(Schedule::gpipe, 2, 2, f, b, 2.0), 4.0);
  EXPECT_DOUBLE_EQ(shared_cores_pipeline_time(Schedule::one_f_one_b, 2, 2, f, b, 2.0), 4.0);
}

// Unequal stages, p = 2, m = 3, f = 1, b = (1, 3), k = 2; event by event (rate 2 alone, 1 together):
// GPipe: s0 F0 0.5 | s0 F1, s1 F0 1.5 | s0 F2, s1 F1 2.5 | s1 F2 3.0 | s1 B0 4.5 | s0 B0 5.5 |
// s1 B1 6.5 | s0 B1 7.5 | s1 B2 8.5 | s0 B2 9.0.  1F1B: s0 F0 0.5 | s0 F1, s1 F0 1.5 | s1 B0 3.0 |
// s0 B0, s1 F1 4.0 | s0 F2 5.0 | s1 B1 6.0 | s0 B1, s1 F2 7.0 | s1 B2 8.5 | s0 B2 9.0. Without
// sharing (k = 1 would be rejected; a core per rank) 1F1B takes 2 + 3 x 4 = 14.
TEST(SharedCores, UnequalStagesByHand) {
  const double f[] = {1, 1}, b[] = {1, 3};
  EXPECT_NEAR(shared_cores_pipeline_time(Schedule::gpipe, 2, 3, f, b, 2.0), 9.0, 1e-12);
  EXPECT_NEAR(shared_cores_pipeline_time(Schedule::one_f_one_b, 2, 3, f, b, 2.0), 9.0, 1e-12);
}

// p = 4, m = 8, f = 1, b = 2, k = 2: the total work is 4 x 8 x 3 = 96 all-busy units, 24 if all
// four stages ran all the time; the fill and drain (fewer than 4 runnable, each at most twice as
// fast) add 1.5: 25.5 (an exact-fraction reimplementation of the same event loop gives 51/2 for both
// schedules; 13.5 at m = 4).
TEST(SharedCores, FourStagesOnTwoCores) {
  const double f[] = {1, 1, 1, 1}, b[] = {2, 2, 2, 2};
  EXPECT_NEAR(shared_cores_pipeline_time(Schedule::one_f_one_b, 4, 8, f, b, 2.0), 25.5, 1e-9);
  EXPECT_NEAR(shared_cores_pipeline_time(Schedule::gpipe, 4, 8, f, b, 2.0), 25.5, 1e-9);
  EXPECT_NEAR(shared_cores_pipeline_time(Schedule::one_f_one_b, 4, 4, f, b, 2.0), 13.5, 1e-9);
  // With one core for all (k = p) the core never idles: the total work / k.
  EXPECT_NEAR(shared_cores_pipeline_time(Schedule::one_f_one_b, 4, 8, f, b, 4.0), 24.0, 1e-9);
}

TEST(SharedCores, NotModelledReturnsNegative) {
  const double f[] = {1, 1}, b[] = {1, 1};
  EXPECT_LT(shared_cores_pipeline_time(Schedule::interleaved, 2, 2, f, b, 2.0), 0);
  EXPECT_LT(shared_cores_pipeline_time(Schedule::zero_bubble, 2, 2, f, b, 2.0), 0);
  EXPECT_LT(shared_cores_pipeline_time(Schedule::gpipe, 2, 2, f, b, 1.0), 0);
  EXPECT_LT(shared_cores_pipeline_time(Schedule::gpipe, kSharedCoresMaxStages + 1, 2, f, b, 2.0), 0);
}
