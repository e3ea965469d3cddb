package buildinfo

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestString(t *testing.T) {
	assert.True(t, strings.HasPrefix(String("savecore", "1.2.3"), "savecore (dumpkit) 1.2.3"))
	assert.True(t, strings.HasPrefix(String("dumpfilter", ""), "dumpfilter (dumpkit) devel"))
}
