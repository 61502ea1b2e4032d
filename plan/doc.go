// Package plan splits the targets of a matrix (kernel × arch) into shards
// that a CI engine runs as parallel jobs, and names each plan by a hash so
// that the shards' results can be merged back only when they came from the
// same plan.
//
// Promises:
//   - New is pure and deterministic: the same Input gives the same shards,
//     in the same order, with the same Hash, on any machine. Map iteration
//     order, the clock and the environment play no part.
//   - Every target of the input is in exactly one shard, and no shard is
//     empty (New refuses more shards than targets).
//   - Targets are placed longest first on the least loaded shard (LPT), by
//     their cost in a previous run when Input.Costs has them, else every
//     target costs the same and shards differ by at most one target.
//     LPT's makespan is at most 4/3 of the optimum; on real timings it is
//     usually within a few percent of max(longest target, total / shards).
//   - Targets whose arches want different runner labels never share a
//     shard; each runner gets at least one shard and the rest go where the
//     load per shard is highest.
//   - Hash covers the matrix hash, the lock hash, the checks, every shard's
//     runner and targets and the costs used: two runs with equal hashes ran
//     parts of one plan.
package plan
