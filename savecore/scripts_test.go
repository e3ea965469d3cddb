package savecore

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeScript installs root/scripts/name with body after a shebang line.
func writeScript(t *testing.T, root, name, body string, mode os.FileMode) string {
	t.Helper()
	dir := filepath.Join(root, ScriptsDir)
	require.NoError(t, os.MkdirAll(dir, 0o755))
	p := filepath.Join(dir, name)
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o700))
	require.NoError(t, os.Chmod(p, mode))
	return p
}

func TestRunScript(t *testing.T) {
	const dumpDir = "/var/crash/127.0.0.1-2009-06-29-16:00"
	tests := []struct {
		name   string
		body   string
		mode   os.FileMode
		setup  func(t *testing.T, root, script string)
		status scriptStatus
		exit   int
		ran    bool // the script's side effect is expected
		output string
	}{
		{name: "exit 0", body: `printf '%s\n' "$@" > "$OUT"; echo hello`, mode: 0o755, status: scriptExited, ran: true, output: "hello\n"},
		{name: "exit 3", body: `printf '%s\n' "$@" > "$OUT"; echo oops >&2; exit 3`, mode: 0o700, status: scriptExited, exit: 3, ran: true, output: "oops\n"},
		{name: "not executable", body: `printf '%s\n' "$@" > "$OUT"`, mode: 0o644, status: scriptAbsent},
		{name: "group-writable", body: `printf '%s\n' "$@" > "$OUT"`, mode: 0o775, status: scriptUntrusted},
		{name: "world-writable", body: `printf '%s\n' "$@" > "$OUT"`, mode: 0o757, status: scriptUntrusted},
		{name: "directory world-writable", body: `printf '%s\n' "$@" > "$OUT"`, mode: 0o755, status: scriptUntrusted,
			setup: func(t *testing.T, root, script string) {
				require.NoError(t, os.Chmod(filepath.Dir(script), 0o777))
			}},
		{name: "other owner", body: `printf '%s\n' "$@" > "$OUT"`, mode: 0o755, status: scriptUntrusted,
			setup: func(t *testing.T, root, script string) {
				if os.Getuid() != 0 {
					t.Skip("chown to another user needs root")
				}
				require.NoError(t, os.Chown(script, 65534, 65534))
			}},
		{name: "a directory", mode: 0o755, status: scriptAbsent, setup: func(t *testing.T, root, script string) {
			require.NoError(t, os.Remove(script))
			require.NoError(t, os.Mkdir(script, 0o755))
		}},
		{name: "bad interpreter", mode: 0o755, status: scriptFailed, setup: func(t *testing.T, root, script string) {
			require.NoError(t, os.WriteFile(script, []byte("#!/nonexistent/sh\n"), 0o755))
		}},
		{name: "killed by signal", body: `printf '%s\n' "$@" > "$OUT"; kill -9 $$`, mode: 0o755, status: scriptFailed, ran: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			out := filepath.Join(t.TempDir(), "args")
			t.Setenv("OUT", out)
			script := writeScript(t, root, NospaceScript, tc.body, tc.mode)
			if tc.setup != nil {
				tc.setup(t, root, script)
			}
			res := runScript(context.Background(), root, NospaceScript, dumpDir, 0, discard())
			assert.Equal(t, tc.status, res.Status, "err: %v", res.Err)
			assert.Equal(t, script, res.Path)
			assert.Equal(t, tc.exit, res.Exit)
			if tc.status == scriptUntrusted {
				assert.ErrorIs(t, res.Err, ErrUnsafe)
			}
			b, err := os.ReadFile(out)
			if tc.ran {
				require.NoError(t, err)
				assert.Equal(t, Host+"\n"+dumpDir+"\n", string(b), "arguments: 127.0.0.1 and the dump directory")
			} else {
				assert.ErrorIs(t, err, os.ErrNotExist, "script must not have run")
			}
			if tc.output != "" {
				assert.Equal(t, tc.output, string(res.Output))
			}
		})
	}
	t.Run("absent", func(t *testing.T) {
		res := runScript(context.Background(), t.TempDir(), SuccessScript, dumpDir, 0, discard())
		assert.Equal(t, scriptAbsent, res.Status)
		assert.NoError(t, res.Err)
	})
	t.Run("timeout", func(t *testing.T) {
		root := t.TempDir()
		writeScript(t, root, SuccessScript, "exec sleep 30", 0o755)
		start := time.Now()
		res := runScript(context.Background(), root, SuccessScript, dumpDir, 200*time.Millisecond, discard())
		assert.Equal(t, scriptFailed, res.Status)
		assert.Less(t, time.Since(start), 10*time.Second)
	})
	t.Run("background child keeps pipe", func(t *testing.T) {
		root := t.TempDir()
		writeScript(t, root, SuccessScript, "sleep 30 & echo started", 0o755)
		start := time.Now()
		res := runScript(context.Background(), root, SuccessScript, dumpDir, time.Minute, discard())
		assert.Less(t, time.Since(start), 10*time.Second)
		assert.Contains(t, string(res.Output), "started")
	})
	t.Run("output bounded", func(t *testing.T) {
		root := t.TempDir()
		writeScript(t, root, SuccessScript, "head -c 1000000 /dev/zero | tr '\\0' x", 0o755)
		res := runScript(context.Background(), root, SuccessScript, dumpDir, time.Minute, discard())
		assert.Equal(t, scriptExited, res.Status)
		assert.LessOrEqual(t, len(res.Output), maxScriptOutput+100)
		assert.True(t, strings.HasSuffix(string(res.Output), "[output truncated]"))
	})
}

func TestScriptStatusString(t *testing.T) {
	for s, want := range map[scriptStatus]string{scriptAbsent: "absent", scriptUntrusted: "not trusted",
		scriptExited: "exited", scriptFailed: "failed", scriptStatus(42): "scriptStatus(42)"} {
		assert.Equal(t, want, s.String())
	}
}
