// How the CUDA kernels cut a block into teams of threads, as plain C++ (host and device): the
// device code (team_sum in cuda_utils.cuh) and the host-side replay of the kernels' indexing in
// tests/cpp/row_plan_check.cpp use these same functions.
//
// A team is `team` consecutive threads of a block, `team` a power of two >= 32 that divides the
// block size, so a team is made of whole warps: team k of a block is threads
// [k * team, (k + 1) * team), i.e. warps [k * team / 32, (k + 1) * team / 32).
#pragma once

#include <c10/macros/Macros.h>

namespace i2i_fast {

constexpr int kTeamWarpSize = 32;

// The warps of the calling thread's team: the slots of a per-warp scratch array (one value per
// warp of the block) that hold this team's partial results.
struct TeamWarps {
  int first;
  int count;
};

C10_HOST_DEVICE inline TeamWarps team_warps(int thread, int team) {
  const int count = team / kTeamWarpSize;
  return {(thread / team) * count, count};
}

}  // namespace i2i_fast
