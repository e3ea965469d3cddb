package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dumpkit/dumpkit/internal/manpage"
)

// TestManPage keeps man/savecore.8 equal to the flags savecore parses: a
// flag added to newFlagSet fails here until the page lists it.
func TestManPage(t *testing.T) {
	require.NoError(t, manpage.Check("../../man/savecore.8", "savecore", newFlagSet(new(flags), new(string))))
}
