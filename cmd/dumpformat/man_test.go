package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/internal/manpage"
)

// TestManPage keeps man/dumpformat.8 equal to the flags dumpformat parses:
// a flag added to newFlagSet fails here until the page lists it.
func TestManPage(t *testing.T) {
	require.NoError(t, manpage.Check("../../man/dumpformat.8", "dumpformat", newFlagSet(new(options), new(string))))
}
