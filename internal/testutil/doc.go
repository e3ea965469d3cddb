// Package testutil holds helpers shared by the tests of several packages:
// whether the race detector is on (Race) and reading gzip'd images (Gunzip).
// Only _test.go files import it.
package testutil
