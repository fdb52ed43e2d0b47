// Memory read bandwidth, STREAM-style: every thread of a pool sums its own slice of an array
// larger than the last-level cache. Token generation reads every weight once per token, so
// this figure bounds decode speed; `tokenmill bench kernels` reports it beside the kernels'.
#pragma once

#include <cstdint>

namespace tokenmill::kernels {

class ThreadPool;

// Four times the last-level cache as the OS reports it, and at least 256 MiB.
int64_t default_bandwidth_bytes();

// Bytes per second (in GB/s, 1e9) read by pool.size() threads summing a `bytes`-long array
// with the active ISA's sum: the median of `runs` timed passes, after one untimed pass.
// Throws tokenmill::Error if bytes or runs is not positive.
double read_bandwidth_gbps(ThreadPool& pool, int64_t bytes, int runs);

}  // namespace tokenmill::kernels
