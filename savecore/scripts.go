package savecore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// Names of the scripts in DIR/scripts (doc/FORMAT.md §9.3).
const (
	ScriptsDir    = "scripts"
	NospaceScript = "diskdump-nospace"
	SuccessScript = "diskdump-success"
)

// DefaultScriptTimeout bounds how long a script may run: savecore runs
// during boot, and a hung mail command must not hold the boot forever.
const DefaultScriptTimeout = 5 * time.Minute

// maxScriptOutput bounds how much of a script's output is kept for the log.
const maxScriptOutput = 16 << 10

// scriptStatus says what happened when savecore looked for a script.
type scriptStatus int

// Script statuses.
const (
	scriptAbsent    scriptStatus = iota // no such file, or not executable
	scriptUntrusted                     // refused: ownership or mode (logged)
	scriptExited                        // ran; Exit holds its status
	scriptFailed                        // could not be started, killed, or timed out
)

func (s scriptStatus) String() string {
	switch s {
	case scriptAbsent:
		return "absent"
	case scriptUntrusted:
		return "not trusted"
	case scriptExited:
		return "exited"
	case scriptFailed:
		return "failed"
	}
	return fmt.Sprintf("scriptStatus(%d)", int(s))
}

// scriptResult is the outcome of one script run.
type scriptResult struct {
	Path   string
	Status scriptStatus
	Exit   int    // exit status when Status is scriptExited
	Output []byte // combined stdout and stderr, at most 16 KiB
	Err    error  // why it was not trusted or failed
}

// checkTrusted refuses a file or directory that someone other than root or
// the current user could have changed: savecore runs as root at boot, so a
// script anyone can edit is a way to run code as root.
func checkTrusted(path string, fi os.FileInfo) error {
	uid, ok := fileOwner(fi)
	if !ok {
		return &UnsafeError{Path: path, Mode: fi.Mode(), Why: "owner unknown"}
	}
	if uid != 0 && int(uid) != os.Getuid() {
		return &UnsafeError{Path: path, Mode: fi.Mode(), UID: uid, Why: "not owned by root or the current user"}
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return &UnsafeError{Path: path, Mode: fi.Mode(), UID: uid, Why: "writable by group or others"}
	}
	return nil
}

// runScript runs root/scripts/name with the arguments "127.0.0.1" and
// dumpDir (doc/FORMAT.md §9.3) if it exists, is executable and is trusted. Its
// output and exit status are logged; what they mean is up to the caller.
func runScript(ctx context.Context, root, name, dumpDir string, timeout time.Duration, log *slog.Logger) scriptResult {
	dir := filepath.Join(root, ScriptsDir)
	path := filepath.Join(dir, name)
	res := scriptResult{Path: path}
	fi, err := os.Stat(path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			res.Err = err
			log.Warn("cannot look at {script}: {err}; it is not run", "script", path, "err", err)
		} else {
			log.Debug("no {script}", "script", path)
		}
		return res
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		log.Info("{script} is not an executable file ({mode}): not run; chmod +x it to have it run", "script", path, "mode", fi.Mode())
		return res
	}
	dfi, err := os.Stat(dir)
	if err == nil {
		err = checkTrusted(dir, dfi)
	}
	if err == nil {
		err = checkTrusted(path, fi)
	}
	if err != nil {
		res.Status, res.Err = scriptUntrusted, err
		log.Warn("{script} not run: {err}; it must belong to root and not be writable by group or others", "script", path, "err", err)
		return res
	}
	if timeout <= 0 {
		timeout = DefaultScriptTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, Host, dumpDir)
	cmd.Dir = root
	out := &limitedBuffer{max: maxScriptOutput}
	cmd.Stdout, cmd.Stderr = out, out
	// A script that leaves a background child holding our pipes must not
	// keep savecore waiting after the script itself exited.
	cmd.WaitDelay = time.Second
	log.Info("running {script} {args}", "script", path, "args", Host+" "+dumpDir)
	err = cmd.Run()
	res.Output = out.Bytes()
	var ee *exec.ExitError
	switch {
	case err == nil:
		res.Status = scriptExited
	case errors.As(err, &ee) && ee.Exited():
		res.Status, res.Exit = scriptExited, ee.ExitCode()
	default:
		res.Status, res.Err = scriptFailed, err
	}
	msg, attrs := "{script} exited with status {exit}", []any{"script", path, "exit", res.Exit}
	if res.Status != scriptExited {
		msg, attrs = "{script} failed: {err}", []any{"script", path, "err", res.Err}
	}
	if len(res.Output) > 0 {
		msg += "; it said: {output}"
		attrs = append(attrs, "output", string(bytes.TrimRight(res.Output, "\n")))
	}
	if res.Status == scriptExited && res.Exit == 0 {
		log.Info(msg, attrs...)
	} else {
		log.Warn(msg, attrs...)
	}
	return res
}

// limitedBuffer keeps the first max bytes written to it and drops the rest,
// reporting success so the script is never stopped by a full pipe.
type limitedBuffer struct {
	buf       bytes.Buffer
	max       int
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.buf.Len(); room < len(p) {
		b.truncated = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *limitedBuffer) Bytes() []byte {
	if b.truncated {
		return append(b.buf.Bytes(), "\n[output truncated]"...)
	}
	return b.buf.Bytes()
}
