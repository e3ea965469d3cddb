package savecore

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// kdump's /etc/kdump.conf as a DEVICE source: its `raw /dev/...` lines name
// the partitions the capture kernel writes a flattened dump to, and its
// `path` line the directory kdumpctl saves them under (doc/FLATTENED.md §5,
// §6). A savecore run at boot can so use the same file as kdump.

// kdumpKeywords are the directives of kdump.conf. A file whose every
// directive is one of them, with at least one raw, path or core_collector
// line, is taken for a kdump.conf; a sysconfig file (NAME=VALUE) never is.
var kdumpKeywords = map[string]bool{
	"raw": true, "path": true, "core_collector": true, "ext2": true, "ext3": true, "ext4": true, "xfs": true,
	"btrfs": true, "minix": true, "nfs": true, "nfs4": true, "ssh": true, "sshkey": true, "virtiofs": true,
	"kdump_pre": true, "kdump_post": true, "extra_bins": true, "extra_modules": true, "default": true,
	"failure_action": true, "final_action": true, "force_rebuild": true, "force_no_rebuild": true,
	"dracut_args": true, "fence_kdump_args": true, "fence_kdump_nodes": true, "auto_reset_crashkernel": true,
	"options": true, "blacklist": true, "link_delay": true, "disk_timeout": true, "dump_format": true,
	"save_raw": true,
}

// ParseKdumpConf parses a kdump.conf: one "keyword value" directive per
// line, '#' comments, quotes around the value removed. `raw` lines give
// Config.Devices in order, the last `path` line Config.DumpDir; Vars maps
// every keyword to its (last) value. ok is false when the text is not a
// kdump.conf (an unknown keyword, or none of raw, path and core_collector).
func ParseKdumpConf(r io.Reader, name string) (cfg *Config, ok bool, err error) {
	b, err := io.ReadAll(io.LimitReader(r, maxConfigBytes+1))
	if err != nil {
		return nil, false, err
	}
	if len(b) > maxConfigBytes {
		return nil, false, nil
	}
	cfg = &Config{Vars: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxConfigBytes)
	for line := 1; sc.Scan(); line++ {
		text, _, _ := strings.Cut(sc.Text(), "#")
		text = strings.TrimSpace(text)
		if text == "" {
			continue
		}
		key, val := text, ""
		if i := strings.IndexAny(text, " \t"); i >= 0 {
			key, val = text[:i], unquote(strings.TrimSpace(text[i:]))
		}
		if !kdumpKeywords[key] {
			return nil, false, nil
		}
		switch key {
		case "raw":
			if val == "" {
				return nil, true, &ConfigError{Path: name, Line: line, Msg: "raw needs a device"}
			}
			cfg.Devices = append(cfg.Devices, val)
		case "path":
			cfg.DumpDir = val
		}
		cfg.Vars[key] = val
	}
	_, raw := cfg.Vars["raw"]
	_, path := cfg.Vars["path"]
	_, coll := cfg.Vars["core_collector"]
	if !raw && !path && !coll {
		return nil, false, nil
	}
	return cfg, true, sc.Err()
}

// unquote removes one pair of surrounding quotes, as kdump's scripts do.
func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' || s[0] == '\'') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// loadKdumpConf is LoadConfig's test for a kdump.conf: ok reports that f
// held one; otherwise f is rewound for the sysconfig parser.
func loadKdumpConf(f io.ReadSeeker, name string) (*Config, bool, error) {
	cfg, ok, err := ParseKdumpConf(f, name)
	if ok {
		return cfg, true, err
	}
	if _, serr := f.Seek(0, io.SeekStart); serr != nil {
		return nil, true, fmt.Errorf("savecore: rereading %s: %w", name, serr)
	}
	return nil, false, nil
}
