// Package ci holds the tests of the project's CI configuration: the GitHub
// Actions workflows under .github/workflows are linted with actionlint (as a
// library, offline) and checked for what the nightly job promises. It has no
// code of its own.
package ci
