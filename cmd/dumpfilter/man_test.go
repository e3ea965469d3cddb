package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/internal/manpage"
)

// TestManPage keeps man/dumpfilter.8 equal to the flags dumpfilter parses:
// a flag added to newFlagSet fails here until the page lists it.
func TestManPage(t *testing.T) {
	require.NoError(t, manpage.Check("../../man/dumpfilter.8", "dumpfilter", newFlagSet(new(flags))))
}
