// Package report turns a run's results (results.Report, read from
// results.json) into what CI systems and people read: the summary table
// printed after a run (summary.go), the feature × kernel grid of the features
// check (featuregrid.go), JUnit XML (junit.go), a self-contained HTML page
// (html.go), GitHub Actions annotations and a job summary (github.go), a
// comparison of two runs (compare.go), and a static site of many runs, one
// a night, with its SVG charts drawn here (site.go, site_svg.go). It imports only package results and
// package protocol besides the standard library, so that reading a run does
// not link the host controller.
//
// Promises:
//   - Every record renders, whatever its check name: a record about a VM
//     itself (results.VMCheck) shows like any error. A run that did not
//     finish says so in every writer (IncompleteNote), and the planned VMs it
//     has no record of get an error each (results.Report.NotRun).
//   - Writers never fail on odd content: text from the guest (messages,
//     details, console lines) is escaped for the format and bounded, and
//     characters XML cannot carry are replaced.
//   - Files named in a Report (console, artifacts) are read only inside the
//     run directory, through an os.Root: a results.json from elsewhere cannot
//     make a writer read outside it. A missing file is noted, not an error.
//   - Output is deterministic: targets sorted by kernel (numerically: 5.10 <
//     6.1 < 6.12) then arch, checks by name.
//   - Compare's exit-code contract: a verdict that got worse, or a figure with a
//     known direction (see Directions) that moved beyond the threshold the bad
//     way, is a regression; other moves are reported, not failed.
package report
