// How the row kernels of normalization_cuda.cu (contiguous NCS data) cut the rows into tiles, teams and blocks:
// the launch plan (host) and each thread's tile and elements (device). Plain C++, so that
// tests/cpp/row_plan_check.cpp replays the kernels' indexing, with these same functions, on a
// machine without a GPU.
//
// A tile is elements [start, start + length) of one row (the whole row for the fused kernels).
// A team of `team` consecutive threads takes one tile; thread `rank` of the team holds the packs
// of VEC elements at pack_offset(rank, i, team) for i < ITEMS (consecutive threads read
// consecutive packs). A block holds max(team, kBlock) threads, i.e. kBlock / team teams of 32 to
// kBlock threads, or one larger team.
#pragma once

#include <c10/macros/Macros.h>

#include <algorithm>
#include <cstdint>

#include "../common/team_layout.h"

namespace i2i_fast::normalization::row_tiling {

constexpr int kWarpSize = kTeamWarpSize;
// Threads per block of the kernels whose teams are smaller than a block.
constexpr int kBlock = 256;
// Largest team of the fused kernels (their __launch_bounds__).
constexpr int kMaxFusedTeamForward = 1024;  // x only in registers
constexpr int kMaxFusedTeamBackward = 512;  // x and dy in registers
// Largest team of the split row kernels (chunk = team * elements per thread).
constexpr int kMaxSplitTeam = 256;

// Elements a thread of a row team holds in registers per tensor it reads: 16, halved with scalar
// loads (VEC == 1: every element has its own offset and bound check) and halved again for
// float64. With 16 everywhere, the scalar and float64 variants spilled registers (ptxas -v, sm_90:
// up to 552 bytes of spill loads, rows_fused_forward<double, 1>); tests/test_cuda_build.py checks
// that no kernel spills.
constexpr int row_elems_per_thread(int elem_bytes, int vec) {
  return 16 / (vec == 1 ? 2 : 1) / (elem_bytes == 8 ? 2 : 1);
}

// ----- host side: the launch plan -----

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Threads of a team that holds `length` elements at `elems` per thread: a power of two, at least
// a warp, at most max_team.
inline int team_for(int64_t length, int elems, int max_team) {
  const int64_t wanted = ceil_div(length, elems);
  int64_t team = kWarpSize;
  while (team < wanted && team < max_team) team *= 2;
  return static_cast<int>(team);
}

struct RowTiling {
  int team;
  int64_t chunk;   // elements per tile (the whole row for the fused kernels)
  int64_t chunks;  // tiles per row
  int64_t rows;

  int threads() const { return std::max(team, kBlock); }
  int teams_per_block() const { return threads() / team; }
  int64_t tiles() const { return rows * chunks; }
  int64_t blocks() const { return ceil_div(tiles(), teams_per_block()); }
};

// Whether one team of the fused kernels holds a row of S elements.
inline bool fused_row_fits(int64_t S, int elems, int max_team) {
  return S <= static_cast<int64_t>(max_team) * elems;
}

// One tile per row (S must fit: fused_row_fits).
inline RowTiling fused_row_tiling(int64_t rows, int64_t S, int elems, int max_team) {
  return {team_for(S, elems, max_team), S, 1, rows};
}

inline RowTiling split_row_tiling(int64_t rows, int64_t S, int elems) {
  const int team = team_for(S, elems, kMaxSplitTeam);
  const int64_t chunk = static_cast<int64_t>(team) * elems;
  return {team, chunk, ceil_div(S, chunk), rows};
}

// ----- device side: the tile of a thread -----

struct RowChunk {
  int64_t row;
  int64_t start;
  int length;  // at most a chunk: kMaxFusedTeamForward * 16 elements (offsets in a tile are int)
  int rank;
  bool active;
};

// The tile of thread `thread` of block `block` (blocks of block_threads threads, teams of
// `team`): tile t = block * teams_per_block + team index, row t / chunks, chunk t % chunks.
// A team past the last tile is idle: active is false, length 0 and row 0 (a valid row, so that
// reading the row's parameters stays in bounds). Idle teams hold nothing and write nothing, but
// they still reach every block barrier of the kernel (team_sum).
C10_HOST_DEVICE inline RowChunk row_chunk(int64_t block, int thread, int block_threads, int team,
                                          int64_t chunk, int64_t chunks, int64_t rows,
                                          int64_t S) {
  const int64_t tile = block * (block_threads / team) + thread / team;
  RowChunk rc;
  rc.rank = thread % team;
  rc.active = tile < rows * chunks;
  if (!rc.active) {
    rc.row = 0;
    rc.start = 0;
    rc.length = 0;
    return rc;
  }
  rc.row = tile / chunks;
  rc.start = (tile - rc.row * chunks) * chunk;
  rc.length = static_cast<int>(S - rc.start < chunk ? S - rc.start : chunk);
  return rc;
}

// Offset, inside the tile, of the i-th pack of VEC elements of thread `rank`.
template <int VEC>
C10_HOST_DEVICE inline int pack_offset(int rank, int i, int team) {
  return (rank + i * team) * VEC;
}

}  // namespace i2i_fast::normalization::row_tiling
