package failpoint

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseFailpoint(t *testing.T) {
	tests := []struct {
		name, in string
		want     string
		n        int64
	}{
		{"unset", "", "", 0},
		{"name", "before-rename", "before-rename", 1},
		{"count", "write:3", "write", 3},
		{"zero count", "write:0", "", 0},
		{"bad count", "write:x", "", 0},
		{"empty name", ":2", "", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fp := parseFailpoint(tc.in)
			if tc.want == "" {
				assert.Nil(t, fp)
				return
			}
			require.NotNil(t, fp)
			assert.Equal(t, tc.want, fp.name)
			assert.Equal(t, tc.n, fp.n)
		})
	}
}

// TestFailpointHelper is not a test: TestFailpointKills runs the test
// binary on it with Env set. It hits "fp-test" as often as
// FAILPOINT_TEST_HITS says and prints a line after each hit.
func TestFailpointHelper(t *testing.T) {
	hits := os.Getenv("FAILPOINT_TEST_HITS")
	if hits == "" {
		t.Skip("helper process for TestFailpointKills")
	}
	n, _ := strconv.Atoi(hits)
	for i := 1; i <= n; i++ {
		Hit("other")
		Hit("fp-test")
		os.Stdout.WriteString("passed " + strconv.Itoa(i) + "\n")
	}
}

func TestFailpointKills(t *testing.T) {
	tests := []struct {
		name   string
		env    string
		killed bool
		passed int // lines printed before the kill (or in all)
	}{
		{"unset", "", false, 5},
		{"first hit", "fp-test", true, 0},
		{"third hit", "fp-test:3", true, 2},
		{"never reached", "fp-test:9", false, 5},
		{"other point", "nowhere", false, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestFailpointHelper$", "-test.count=1")
			cmd.Env = append(os.Environ(), "FAILPOINT_TEST_HITS=5", Env+"="+tc.env)
			out, err := cmd.Output()
			var ee *exec.ExitError
			if tc.killed {
				require.True(t, errors.As(err, &ee), "want a killed process, got %v", err)
				ws := ee.Sys().(syscall.WaitStatus)
				require.True(t, ws.Signaled(), "exit status %v", ws)
				assert.Equal(t, syscall.SIGKILL, ws.Signal())
				assert.Contains(t, string(ee.Stderr), "failpoint fp-test:")
			} else {
				require.NoError(t, err)
			}
			passed := strings.Count(string(out), "passed ")
			assert.Equal(t, tc.passed, passed, "output:\n%s", out)
		})
	}
}
