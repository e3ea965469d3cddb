package blockdev

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// locksPath lists the file locks of the system (proc(5)).
var locksPath = "/proc/locks"

// lockPoll is how often a waiting lock is tried again.
const lockPoll = 50 * time.Millisecond

// LockFile takes a flock(2) lock on f, exclusive or shared, waiting at
// most wait for another holder to let go (0: a single try). The lock lasts
// until f is closed. On timeout it returns a [*LockedError] naming the
// holder when /proc/locks tells it; path is for messages.
func LockFile(f *os.File, path string, shared bool, wait time.Duration) error {
	how := unix.LOCK_EX
	if shared {
		how = unix.LOCK_SH
	}
	deadline := time.Now().Add(wait)
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			return &os.PathError{Op: "flock", Path: path, Err: err}
		}
		if !time.Now().Before(deadline) {
			return &LockedError{Path: path, Holder: lockHolder(f), Waited: wait.Round(time.Millisecond).String()}
		}
		time.Sleep(min(lockPoll, time.Until(deadline)+time.Millisecond))
	}
}

// lockHolder looks f's inode up in /proc/locks and names the process of a
// FLOCK lock on it: "pid 1234 (savecore)". It returns "" when it cannot.
func lockHolder(f *os.File) string {
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	lf, err := os.Open(locksPath)
	if err != nil {
		return ""
	}
	defer lf.Close()
	// Lines: "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; waiters
	// have "->" after the number.
	want := fmt.Sprintf("%02x:%02x:%d", unix.Major(uint64(st.Dev)), unix.Minor(uint64(st.Dev)), st.Ino)
	sc := bufio.NewScanner(lf)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[1] == "->" || fs[1] != "FLOCK" || !sameLockDev(fs[5], want) {
			continue
		}
		pid, err := strconv.Atoi(fs[4])
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(filepath.Join("/proc", fs[4], "comm"))
		if c := strings.TrimSpace(string(comm)); c != "" {
			return fmt.Sprintf("pid %d (%s)", pid, c)
		}
		return fmt.Sprintf("pid %d", pid)
	}
	return ""
}

// sameLockDev compares the "major:minor:inode" of /proc/locks, whose
// major and minor are hexadecimal of varying width, with want.
func sameLockDev(field, want string) bool {
	parse := func(s string) (a, b, c uint64, ok bool) {
		p := strings.Split(s, ":")
		if len(p) != 3 {
			return 0, 0, 0, false
		}
		var e1, e2, e3 error
		a, e1 = strconv.ParseUint(p[0], 16, 32)
		b, e2 = strconv.ParseUint(p[1], 16, 32)
		c, e3 = strconv.ParseUint(p[2], 10, 64)
		return a, b, c, e1 == nil && e2 == nil && e3 == nil
	}
	a1, b1, c1, ok1 := parse(field)
	a2, b2, c2, ok2 := parse(want)
	return ok1 && ok2 && a1 == a2 && b1 == b2 && c1 == c2
}

// OpenLocked opens path like [Open] after taking a flock(2) lock on it
// (exclusive, or shared when shared is set), waiting at most wait for
// another savecore or dumpformat to let go. The lock is taken through a
// descriptor of its own, before the [ReadWrite] O_EXCL open of a block
// device, so that a second process waits for the lock instead of failing
// on the exclusive open. [Device.Close] releases it.
func OpenLocked(path string, mode Mode, shared bool, wait time.Duration) (*Device, error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	lf, err := os.Open(real)
	if err != nil {
		return nil, err
	}
	name := path
	if abs, err := filepath.Abs(real); err == nil && abs != path {
		name = path + " (" + abs + ")"
	}
	if err := LockFile(lf, name, shared, wait); err != nil {
		lf.Close()
		return nil, err
	}
	d, err := Open(path, mode)
	if err != nil {
		lf.Close()
		return nil, err
	}
	if !sameFile(lf, d.f) {
		// The path was replaced between the two opens: the lock is not
		// on the device opened.
		d.Close()
		lf.Close()
		return nil, fmt.Errorf("blockdev: %s changed while it was being opened", name)
	}
	d.lock = lf
	return d, nil
}

func sameFile(a, b *os.File) bool {
	fa, err1 := a.Stat()
	fb, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}
