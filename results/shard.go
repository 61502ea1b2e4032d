package results

import "time"

// Shard says which part of a plan a run was (vmrunner run --shard I/N), or,
// in a merged run, which plan its shards came from. It carries the whole
// plan, so that a merge knows what a missing shard should have run without
// the matrix.
type Shard struct {
	Index      int    `json:"index"` // 1-based; 0 in a merged run
	Count      int    `json:"count"`
	Plan       string `json:"plan"`        // the plan's hash
	MatrixHash string `json:"matrix_hash"` // sha256 of the matrix file
	LockHash   string `json:"lock_hash,omitempty"`
	// Checks are the matrix's checks: what every target runs.
	Checks []string `json:"checks"`
	// Targets are every shard's targets, shard 1 first.
	Targets [][]Target `json:"targets"`
	// Parts are the shard runs a merged run was made of, by index.
	Parts []ShardPart `json:"parts,omitempty"`
}

// ShardPart is one shard run of a merged run.
type ShardPart struct {
	Index      int       `json:"index"`
	ID         string    `json:"id,omitempty"` // empty when the shard was missing
	Host       string    `json:"host,omitempty"`
	Started    time.Time `json:"started,omitzero"`
	DurationMS int64     `json:"duration_ms"`
	Finished   bool      `json:"finished"`
	ExitCode   int       `json:"exit_code"`
}
