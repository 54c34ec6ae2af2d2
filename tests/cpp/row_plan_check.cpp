// Replays on the CPU how the CUDA row kernels of csrc/normalization/cuda.cu index their data, with
// the same functions the kernels and their host code use (row_tiling.h, team_layout.h), so that
// the indexing is checked on a machine without a GPU (tests/test_cuda_row_plan.py builds and runs
// this program).
//
//   row_plan_check             checks every kernel kind, element size and pack width over a sweep
//                              of row counts and lengths; prints "checked N plans" (exit 0) or
//                              the first failure (exit 1)
//   row_plan_check plan B V R S
//                              prints the plans for R rows of S elements of B bytes loaded in packs
//                              of V, one line per kernel kind: kind team threads teams_per_block
//                              blocks chunk chunks (a kind whose rows do not fit: "kind none")
//
// For each plan the replay walks every thread of every block: the tile it takes (row_chunk), the
// elements it holds (pack_offset), and the sum team_sum gives it: each warp adds its lanes' values
// into its scratch slot, then each thread adds the slots team_warps names. Checks: every element of
// every row is held by exactly one thread; every thread of an active team gets the exact sum of
// its tile; idle teams hold nothing and only occur after the last tile; a team is a power of two
// of whole warps that divides the block; the block fits the kernel's launch bounds and its
// scratch array; a fused row fits in its team.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "normalization/row_tiling.h"

namespace {

namespace rt = i2i_fast::normalization::row_tiling;

// One kernel kind of cuda.cu: its largest team, its __launch_bounds__ and its scratch slots.
struct KernelKind {
  const char* name;
  bool fused;
  int max_team;
  int launch_bound;
  int scratch_slots;
};

constexpr KernelKind kKinds[] = {
    {"fused_forward", true, rt::kMaxFusedTeamForward, rt::kMaxFusedTeamForward,
     rt::kMaxFusedTeamForward / rt::kWarpSize},
    {"fused_backward", true, rt::kMaxFusedTeamBackward, rt::kMaxFusedTeamBackward,
     rt::kMaxFusedTeamBackward / rt::kWarpSize},
    {"split", false, rt::kMaxSplitTeam, rt::kMaxSplitTeam, rt::kMaxSplitTeam / rt::kWarpSize},
};

// (element bytes, pack width) of the instantiated kernels: float16/bfloat16, float32, float64
// with 16-byte packs and with scalar loads.
struct ElementType {
  int bytes;
  int vec;
};
constexpr ElementType kTypes[] = {{2, 8}, {2, 1}, {4, 4}, {4, 1}, {8, 2}, {8, 1}};

std::string failure;  // the first failure

// Returns false from the calling function, with the message, when cond does not hold (the
// message is built only then).
#define REQUIRE(cond, message) \
  do {                         \
    if (!(cond)) {             \
      failure = (message);     \
      return false;            \
    }                          \
  } while (0)

// The value of element e of the (rows x S) tensor: small integers, so sums are exact.
int64_t value_of(int64_t e) { return (e * 7919) % 1009 + 1; }

rt::RowTiling plan_for(const KernelKind& k, int elems, int64_t rows, int64_t S) {
  return k.fused ? rt::fused_row_tiling(rows, S, elems, k.max_team)
                 : rt::split_row_tiling(rows, S, elems);
}

template <int VEC>
bool replay(const KernelKind& k, int elems, int64_t rows, int64_t S) {
  const std::string where = std::string(k.name) + " elems=" + std::to_string(elems) +
                            " vec=" + std::to_string(VEC) + " rows=" + std::to_string(rows) +
                            " S=" + std::to_string(S) + ": ";
  const int items = elems / VEC;
  const rt::RowTiling t = plan_for(k, elems, rows, S);
  const int threads = t.threads();
  const int warps = threads / rt::kWarpSize;
  REQUIRE(t.team >= rt::kWarpSize && t.team <= k.max_team && (t.team & (t.team - 1)) == 0,
          where + "team " + std::to_string(t.team) + " is not a power of two in [32, max]");
  REQUIRE(threads % t.team == 0 && threads <= k.launch_bound,
          where + "block of " + std::to_string(threads) + " threads for teams of " +
              std::to_string(t.team) + " (launch bound " + std::to_string(k.launch_bound) + ")");
  REQUIRE(warps <= k.scratch_slots, where + "more warps than scratch slots");
  REQUIRE(t.blocks() > 0 && t.blocks() <= INT32_MAX, where + "grid size out of range");
  if (k.fused) {
    REQUIRE(t.chunk == S && t.chunks == 1, where + "a fused tile is not the whole row");
    REQUIRE(static_cast<int64_t>(t.team) * items * VEC >= S, where + "row does not fit");
  } else {
    REQUIRE(t.chunk == static_cast<int64_t>(t.team) * elems && t.chunk * t.chunks >= S &&
                (t.chunks - 1) * t.chunk < S,
            where + "chunks do not cover the row");
  }

  std::vector<int> held(static_cast<size_t>(rows * S), 0);
  std::vector<int64_t> prefix(static_cast<size_t>(rows * S) + 1, 0);  // sums of value_of
  for (int64_t e = 0; e < rows * S; ++e) prefix[e + 1] = prefix[e] + value_of(e);
  std::vector<int64_t> thread_value(threads);
  std::vector<int64_t> slot(warps);
  std::vector<rt::RowChunk> chunk_of(threads);
  for (int64_t block = 0; block < t.blocks(); ++block) {
    for (int thread = 0; thread < threads; ++thread) {
      const rt::RowChunk rc =
          rt::row_chunk(block, thread, threads, t.team, t.chunk, t.chunks, t.rows, S);
      chunk_of[thread] = rc;
      const int64_t tile = block * t.teams_per_block() + thread / t.team;
      REQUIRE(rc.active == (tile < t.tiles()), where + "wrong activity of tile " +
                                                   std::to_string(tile));
      if (!rc.active) {
        REQUIRE(rc.length == 0 && rc.row == 0 && block == t.blocks() - 1,
                where + "idle team with data, or not in the last block");
      } else {
        REQUIRE(rc.row >= 0 && rc.row < rows && rc.start >= 0 && rc.length > 0 &&
                    rc.length <= t.chunk && rc.start + rc.length <= S,
                where + "tile out of its row");
      }
      int64_t v = 0;
      for (int i = 0; i < items; ++i) {
        const int e = rt::pack_offset<VEC>(rc.rank, i, t.team);
        if (e >= rc.length) continue;
        REQUIRE(e + VEC <= rc.length, where + "a pack crosses the end of its tile");
        for (int u = 0; u < VEC; ++u) {
          const int64_t index = rc.row * S + rc.start + e + u;
          ++held[static_cast<size_t>(index)];
          v += value_of(index);
        }
      }
      thread_value[thread] = v;
    }
    // team_sum: warp_sum, then one slot per warp, then each team adds its own slots.
    for (int w = 0; w < warps; ++w) {
      slot[w] = 0;
      for (int lane = 0; lane < rt::kWarpSize; ++lane) {
        slot[w] += thread_value[w * rt::kWarpSize + lane];
      }
    }
    for (int thread = 0; thread < threads; ++thread) {
      int64_t total;
      if (t.team <= rt::kWarpSize) {
        total = slot[thread / rt::kWarpSize];
      } else {
        const i2i_fast::TeamWarps tw = i2i_fast::team_warps(thread, t.team);
        REQUIRE(tw.first >= 0 && tw.first + tw.count <= warps &&
                    tw.count == t.team / rt::kWarpSize,
                where + "team reads scratch slots outside the block's");
        total = 0;
        for (int w = 0; w < tw.count; ++w) total += slot[tw.first + w];
      }
      const rt::RowChunk& rc = chunk_of[thread];
      const int64_t first = rc.row * S + rc.start;
      const int64_t expected = prefix[first + rc.length] - prefix[first];
      REQUIRE(total == expected, where + "thread " + std::to_string(thread) + " of block " +
                                     std::to_string(block) + " (row " + std::to_string(rc.row) +
                                     ") sums " + std::to_string(total) + ", its tile sums " +
                                     std::to_string(expected));
    }
  }
  for (int64_t e = 0; e < rows * S; ++e) {
    REQUIRE(held[static_cast<size_t>(e)] == 1,
            where + "element " + std::to_string(e) + " held " +
                std::to_string(held[static_cast<size_t>(e)]) + " times");
  }
  return true;
}

bool replay_any(const KernelKind& k, const ElementType& type, int64_t rows, int64_t S) {
  const int elems = rt::row_elems_per_thread(type.bytes, type.vec);
  switch (type.vec) {
    case 1: return replay<1>(k, elems, rows, S);
    case 2: return replay<2>(k, elems, rows, S);
    case 4: return replay<4>(k, elems, rows, S);
    case 8: return replay<8>(k, elems, rows, S);
    default:
      failure = "unexpected pack width " + std::to_string(type.vec);
      return false;
  }
}

int check_all() {
  std::vector<int64_t> lengths;
  for (int64_t s = 1; s <= 72; ++s) lengths.push_back(s);
  for (int64_t s : {96, 127, 128, 129, 255, 256, 257, 500, 511, 512, 513, 640, 1000, 1023, 1024,
                    1025, 1517, 2000, 2047, 2048, 2049, 3000, 4095, 4096, 4097, 6000, 8191, 8192,
                    8193, 12000, 16383, 16384, 16385, 40000}) {
    lengths.push_back(s);
  }
  const int64_t row_counts[] = {1, 2, 3, 4, 5, 7, 8, 9, 33};
  int64_t plans = 0;
  for (const KernelKind& k : kKinds) {
    for (const ElementType& type : kTypes) {
      const int elems = rt::row_elems_per_thread(type.bytes, type.vec);
      for (int64_t S : lengths) {
        if (S % type.vec != 0) continue;  // 16-byte packs only for rows of whole packs
        if (k.fused && !rt::fused_row_fits(S, elems, k.max_team)) continue;
        for (int64_t rows : row_counts) {
          // Idle teams need several teams per block (short rows); long rows: a few rows suffice.
          if (rows * S > (int64_t(1) << 16) && rows > 3) continue;
          ++plans;
          if (!replay_any(k, type, rows, S)) {
            std::printf("FAILED: %s\n", failure.c_str());
            return 1;
          }
        }
      }
    }
  }
  std::printf("checked %lld plans\n", static_cast<long long>(plans));
  return 0;
}

int print_plans(int bytes, int vec, int64_t rows, int64_t S) {
  const int elems = rt::row_elems_per_thread(bytes, vec);
  for (const KernelKind& k : kKinds) {
    if (k.fused && !rt::fused_row_fits(S, elems, k.max_team)) {
      std::printf("%s none\n", k.name);
      continue;
    }
    const rt::RowTiling t = plan_for(k, elems, rows, S);
    std::printf("%s %d %d %d %lld %lld %lld\n", k.name, t.team, t.threads(), t.teams_per_block(),
                static_cast<long long>(t.blocks()), static_cast<long long>(t.chunk),
                static_cast<long long>(t.chunks));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 6 && std::string(argv[1]) == "plan") {
    return print_plans(std::atoi(argv[2]), std::atoi(argv[3]), std::atoll(argv[4]),
                       std::atoll(argv[5]));
  }
  if (argc != 1) {
    std::fprintf(stderr, "usage: %s [plan ELEMENT_BYTES VEC ROWS S]\n", argv[0]);
    return 2;
  }
  return check_all();
}
