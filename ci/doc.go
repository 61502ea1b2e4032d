// Package ci holds the tests of the project's CI configuration: the GitHub
// Actions workflows under .github/workflows are linted with actionlint (as a
// library, offline) and checked for what the nightly jobs promise (plan →
// shards → merge); the reusable action (action.yml at the repository root)
// is checked as metadata, its steps linted with actionlint as a workflow
// job, its scripts (scripts/action/) with shellcheck, and run for real on a
// one-VM matrix by the integration tier. It has no code of its own.
package ci
