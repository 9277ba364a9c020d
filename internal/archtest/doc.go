// Package archtest holds the test that keeps the import graph to the map
// in docs/architecture.md ("The map"): run `go test ./internal/archtest/`.
// It has no code of its own.
package archtest
