#pragma once
// NCCL communicator (issue 9) behind executor/comm.hpp. Data pointers are device memory
// (device_memory() is true). Bootstrap through the host communicator (MPI under mpirun): rank 0
// calls ncclGetUniqueId and the id's 128 bytes travel as doubles through all_reduce_host (exact:
// each byte is a small integer, the other ranks add zeros), so this library needs no MPI headers.
// Each rank uses GPU (local rank % visible GPUs), as the CUDA backend (device_memory.hpp
// select_local_device). Work is ordered after the backend's compute stream by an event; every
// blocking call then waits for its NCCL stream, polling against the timeout; on timeout the NCCL
// communicator is aborted and CommError names the call. send() stages the data and defers it: it is
// launched in one NCCL group with the next recv() (so two stages sending to each other cannot
// deadlock), or before any other blocking call of the communicator family. NCCL has no message
// tags: send/recv pairs between two ranks match in issue order.
#include <memory>

#include "executor/comm.hpp"

namespace scaleplan::executor {

// True when executor/cuda was built with NCCL.
bool nccl_built();
// Collective over `host_world`, which must outlive the returned communicator (and its splits).
// Throws CommError when NCCL is not built or initialisation fails.
std::unique_ptr<Comm> make_nccl_comm(Comm& host_world);

// The communicator a trainer should hand its tensors to: nullptr when the backend's memory is host
// accessible (keep using host_world); for the CUDA backend NCCL (any size, including 1), or without
// NCCL a 1-rank device communicator. Throws CommError for several ranks without NCCL (a host
// communicator cannot read device pointers). Usage in a run path:
//   auto dev = make_device_comm(be->host_accessible(), *world);
//   Comm& comm = dev ? *dev : *world;
std::unique_ptr<Comm> make_device_comm(bool backend_host_accessible, Comm& host_world);

}  // namespace scaleplan::executor
