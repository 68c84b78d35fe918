#pragma once
// A pipeline step when the ranks share fewer cores than there are ranks (the CPU executor under
// mpirun --oversubscribe): the kernel scheduler shares the cores among the runnable ranks, so a
// stage runs faster while other stages wait (in a bubble, for a message) and slower while all run.
#include "strategies/plan.hpp"

namespace scaleplan::strategies {

// Most stages the simulation takes (the CPU executor runs a handful of ranks on one host).
inline constexpr int kSharedCoresMaxStages = 64;

// Makespan of the pipeline part of a step of m microbatches on p stages, GPipe or (non-interleaved)
// 1F1B in the executor's op order (executor/gpt.cpp), under processor sharing: every stage holds the
// same number of ranks, R ranks in all on R/k cores (k > 1); f_s[i], b_s[i] are stage i's forward
// and backward of one microbatch at the rate a rank reaches when all R ranks run (the rate
// `calibrate` measures with all ranks busy). With w of the p stages runnable each of their ranks
// gets min(1, cores / runnable ranks) of a core, i.e. min(p / w, k) times that rate (the fluid
// model of a fair scheduler, Kleinrock 1967 "Time-shared systems"; Linux CFS shares a core equally
// among runnable tasks of equal weight). Returns a negative value for schedules it does not model
// (interleaved, zero_bubble), p > kSharedCoresMaxStages, or k <= 1. Allocates nothing.
double shared_cores_pipeline_time(Schedule s, int p, long long m, const double* f_s, const double* b_s, double k);

}  // namespace scaleplan::strategies
