package zero

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestIs(t *testing.T) {
	for _, n := range []int{0, 1, 4096, MaxPage, MaxPage + 5, 3 * MaxPage} {
		b := make([]byte, n)
		assert.True(t, Is(b), "n=%d", n)
		if n > 0 {
			b[n-1] = 1
			assert.False(t, Is(b), "n=%d last byte set", n)
			b[n-1], b[0] = 0, 1
			assert.False(t, Is(b), "n=%d first byte set", n)
		}
	}
	assert.Len(t, Page(4096), 4096)
	assert.True(t, Is(Page(MaxPage)))
}
