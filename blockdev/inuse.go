package blockdev

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// mountEntry is one line of /proc/self/mountinfo, reduced to what we need.
type mountEntry struct {
	Major, Minor uint32
	MountPoint   string
	FSType       string
	Source       string
}

// parseMountinfo parses the format of proc(5) /proc/[pid]/mountinfo:
//
//	36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//
// Field 3 is major:minor, field 5 the mount point; after the "-" separator
// come the filesystem type and the mount source.
func parseMountinfo(r io.Reader) ([]mountEntry, error) {
	var mounts []mountEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 5 || sep < 0 || sep+2 >= len(f) {
			return nil, fmt.Errorf("blockdev: mountinfo line %d: malformed: %q", line, sc.Text())
		}
		maj, min, ok := strings.Cut(f[2], ":")
		if !ok {
			return nil, fmt.Errorf("blockdev: mountinfo line %d: bad device %q", line, f[2])
		}
		major, err := strconv.ParseUint(maj, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("blockdev: mountinfo line %d: bad major: %w", line, err)
		}
		minor, err := strconv.ParseUint(min, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("blockdev: mountinfo line %d: bad minor: %w", line, err)
		}
		mounts = append(mounts, mountEntry{
			Major:      uint32(major),
			Minor:      uint32(minor),
			MountPoint: unescapeOctal(f[4]),
			FSType:     f[sep+1],
			Source:     unescapeOctal(f[sep+2]),
		})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("blockdev: reading mountinfo: %w", err)
	}
	return mounts, nil
}

// parseSwaps returns the file names listed in /proc/swaps:
//
//	Filename				Type		Size		Used		Priority
//	/dev/dm-1                               partition	8388604		0		-2
func parseSwaps(r io.Reader) ([]string, error) {
	var names []string
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		f := strings.Fields(sc.Text())
		if line == 1 || len(f) == 0 {
			continue // header
		}
		names = append(names, unescapeOctal(f[0]))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("blockdev: reading swaps: %w", err)
	}
	return names, nil
}

// unescapeOctal undoes the kernel's \ooo escaping of space, tab, newline and
// backslash in /proc paths.
func unescapeOctal(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return '0' <= c && c <= '7' }
