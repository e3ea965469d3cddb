package dmesg

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadRecords checks the decoded records against what the builders
// laid out, on x86_64 and on i386, without any external tool.
func TestReadRecords(t *testing.T) {
	for _, arch := range []Arch{X86_64, I386} {
		direct := arch == X86_64
		tests := []struct {
			name    string
			release string
			build   func(img *image) ([]testRecord, []byte)
		}{
			{"lockless", "6.1.0", func(img *image) ([]testRecord, []byte) {
				return buildLockless(t, img, testMessages, locklessOpts{countBits: 4, sizeBits: 10, firstID: 0x3ffffffe, firstLpos: 1 << 20, direct: direct}), nil
			}},
			{"structured", "4.19.0", func(img *image) ([]testRecord, []byte) {
				return buildStructured(t, img, testMessages, 1024, 900, "printk_log", direct), nil
			}},
			{"structured without sizes", "3.5.0", func(img *image) ([]testRecord, []byte) {
				return buildStructured(t, img, testMessages, 2048, 64, "", direct), nil
			}},
			{"legacy 2.6.9", "2.6.9-89.ELsmp", func(img *image) ([]testRecord, []byte) {
				return nil, buildLegacy(t, img, legacyText(10000), 4096, direct)
			}},
			{"legacy 2.6.32", "2.6.32-754.el6", func(img *image) ([]testRecord, []byte) {
				return nil, buildLegacy(t, img, legacyText(1000), 4096, direct)
			}},
		}
		for _, tc := range tests {
			t.Run(arch.String()+" "+tc.name, func(t *testing.T) {
				img := newImage(t, arch, tc.release, 128<<10, 0)
				recs, raw := tc.build(img)
				log, err := Read(img.memory(), arch, img.vmcoreinfo(t))
				require.NoError(t, err)
				if raw != nil {
					assert.Equal(t, string(raw), string(log.Raw))
					return
				}
				require.Len(t, log.Records, len(recs))
				for i, r := range recs {
					assert.Equal(t, r.ts, log.Records[i].TsNsec, i)
					assert.Equal(t, r.text, string(log.Records[i].Text), i)
				}
			})
		}
	}
}

// edit changes one VMCOREINFO line of img: key=value, or removes the key
// when value is "".
func edit(t *testing.T, img *image, key, value string) *VMCOREINFO {
	var out []string
	for _, l := range strings.Split(strings.TrimSuffix(img.info.String(), "\n"), "\n") {
		if strings.HasPrefix(l, key+"=") {
			if value == "" {
				continue
			}
			l = key + "=" + value
		}
		out = append(out, l)
	}
	info, err := ParseVMCOREINFO([]byte(strings.Join(out, "\n")))
	require.NoError(t, err)
	return info
}

// damaged is a machine and the VMCOREINFO to read it with.
type damaged struct {
	img  *image
	info *VMCOREINFO
}

// readErrorCase is a damaged machine and the error Read must give.
type readErrorCase struct {
	name  string
	setup func() damaged
	want  error
	check func(t *testing.T, err error)
}

// TestReadErrors covers missing keys, pointers outside the dump and
// corrupt rings: each gives a typed error, never a panic or a hang.
func TestReadErrors(t *testing.T) {
	for _, tc := range readErrorCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.setup()
			_, err := Read(d.img.memory(), X86_64, d.info)
			require.ErrorIs(t, err, tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "dmesg: "), err.Error())
			if tc.check != nil {
				tc.check(t, err)
			}
		})
	}
	img := newImage(t, X86_64, "6.1.0", 64<<10, 0)
	_, err := Read(img.memory(), Arch(9), img.vmcoreinfo(t))
	require.ErrorIs(t, err, ErrUnsupportedArch)
}

func readErrorCases(t *testing.T) []readErrorCase {
	lockless := func() *image {
		img := newImage(t, X86_64, "6.1.0", 128<<10, 0)
		buildLockless(t, img, testMessages, locklessOpts{countBits: 4, sizeBits: 10, firstID: 5})
		return img
	}
	structured := func() (*image, uint64) {
		img := newImage(t, X86_64, "4.19.0", 128<<10, 0)
		buildStructured(t, img, testMessages, 1024, 600, "printk_log", false)
		a, _ := img.vmcoreinfo(t).Symbol("log_buf")
		return img, a
	}
	legacy := func() (*image, uint64) {
		img := newImage(t, X86_64, "2.6.9-89.ELsmp", 128<<10, 0)
		buildLegacy(t, img, legacyText(3000), 4096, false)
		a, _ := img.vmcoreinfo(t).Symbol("log_buf")
		return img, a
	}
	return []readErrorCase{
		{"no log symbols", func() damaged {
			img := newImage(t, X86_64, "6.1.0", 64<<10, 0)
			return damaged{img, img.vmcoreinfo(t)}
		}, ErrNoLogSymbols, nil},
		{"lockless missing offset", func() damaged {
			img := lockless()
			return damaged{img, edit(t, img, "OFFSET(prb_desc_ring.descs)", "")}
		}, ErrMissingKey, func(t *testing.T, err error) {
			assert.EqualError(t, err, "dmesg: missing OFFSET(prb_desc_ring.descs) (needed by the lockless log)")
		}},
		{"lockless offset outside struct", func() damaged {
			img := lockless()
			return damaged{img, edit(t, img, "OFFSET(prb_desc_ring.tail_id)", "4000")}
		}, ErrCorrupt, nil},
		{"lockless huge count_bits", func() damaged {
			img := lockless()
			a, _ := img.vmcoreinfo(t).Symbol("printk_rb_static")
			img.putUint(a, 40, 4)
			return damaged{img, img.vmcoreinfo(t)}
		}, ErrCorrupt, nil},
		{"lockless prb outside RAM", func() damaged {
			img := lockless()
			a, _ := img.vmcoreinfo(t).Symbol("prb")
			img.putWord(a, 0xffffffff90000000)
			return damaged{img, img.vmcoreinfo(t)}
		}, errNotInDump, func(t *testing.T, err error) {
			var ae *AddrError
			require.ErrorAs(t, err, &ae)
			assert.Equal(t, "printk_ringbuffer", ae.Field)
		}},
		{"lockless head unreachable", func() damaged {
			img := lockless()
			a, _ := img.vmcoreinfo(t).Symbol("printk_rb_static")
			img.putWord(a+24, 1<<40)
			return damaged{img, img.vmcoreinfo(t)}
		}, ErrCorrupt, nil},
		{"structured log_buf outside RAM", func() damaged {
			img, a := structured()
			img.putWord(a, 0xffff888007000000)
			return damaged{img, img.vmcoreinfo(t)}
		}, errNotInDump, nil},
		{"structured log_buf unmapped", func() damaged {
			img, a := structured()
			img.putWord(a, 0xffffc90000000000)
			return damaged{img, img.vmcoreinfo(t)}
		}, ErrBadAddress, nil},
		{"structured huge log_buf_len", func() damaged {
			img, a := structured()
			img.putUint(a+8, 1<<31, 4)
			return damaged{img, img.vmcoreinfo(t)}
		}, ErrCorrupt, nil},
		{"structured index outside", func() damaged {
			img, a := structured()
			img.putUint(a+16, 1020, 4)
			return damaged{img, img.vmcoreinfo(t)}
		}, ErrCorrupt, nil},
		{"structured cycle", func() damaged {
			img, a := structured()
			img.putUint(a+20, 3, 4) // log_next_idx never reached
			return damaged{img, img.vmcoreinfo(t)}
		}, ErrCorrupt, func(t *testing.T, err error) {
			assert.Contains(t, err.Error(), "cycle in log_buf")
		}},
		{"legacy not power of two", func() damaged {
			img, a := legacy()
			img.putUint(a+8, 3000, 4)
			return damaged{img, img.vmcoreinfo(t)}
		}, ErrCorrupt, nil},
		{"legacy log_buf outside RAM", func() damaged {
			img, a := legacy()
			img.putWord(a, 0x10000000000+0x7000000)
			return damaged{img, edit(t, img, "SYMBOL(init_top_pgt)", "")}
		}, errNotInDump, nil},
		{"legacy bad release", func() damaged {
			img, _ := legacy()
			return damaged{img, edit(t, img, "OSRELEASE", "rhel")}
		}, ErrMissingKey, nil},
	}
}

// TestStructuredPartial checks that a corrupt record keeps the records
// before it.
func TestStructuredPartial(t *testing.T) {
	h := recLayout{size: 16, ts: 0, len: 8, textLen: 10}
	ring := make([]byte, 256)
	put := func(at, l, tl int, text string) {
		ring[at+8], ring[at+10] = byte(l), byte(tl)
		copy(ring[at+16:], text)
	}
	put(0, 24, 5, "hello")
	put(24, 8, 0, "") // len shorter than the header
	recs, err := h.decode(ring, 0, 64)
	require.ErrorIs(t, err, ErrCorrupt)
	require.Len(t, recs, 1)
	assert.Equal(t, "hello", string(recs[0].Text))
	var ce *CorruptError
	require.True(t, errors.As(err, &ce))
	assert.Equal(t, uint64(24), ce.Value)
}

// TestLegacyOldDirectMap reads a 2.6.9 x86_64 log whose log_buf (set by
// log_buf_len=) lies in the pre-2.6.11 direct map at 1 TiB, with no page
// tables known, as with a VMCOREINFO made from a System.map.
func TestLegacyOldDirectMap(t *testing.T) {
	img := newImage(t, X86_64, "2.6.9-89.ELsmp", 128<<10, 0)
	want := buildLegacy(t, img, legacyText(9000), 8192, false)
	info := img.vmcoreinfo(t)
	a, _ := info.Symbol("log_buf")
	buf := leUint(img.data, int(a-img.vaddr), 8)
	img.putWord(a, 0x10000000000+img.paddr+(buf-img.vaddr))
	log, err := Read(img.memory(), X86_64, edit(t, img, "SYMBOL(init_top_pgt)", ""))
	require.NoError(t, err)
	assert.Equal(t, string(want), string(log.Raw))
}

// TestReadTruncated cuts the memory of each makedumpfile case at every page
// boundary: Read either succeeds (the log lies before the cut) or reports
// ErrBadAddress, never anything else.
func TestReadTruncated(t *testing.T) {
	for _, tc := range layoutCases() {
		t.Run(tc.name, func(t *testing.T) {
			img := tc.build(t)
			info := img.vmcoreinfo(t)
			full, err := Read(img.memory(), img.arch, info)
			require.NoError(t, err)
			ok := 0
			for n := 0; n < len(img.data); n += pageSize {
				log, err := Read(&physMem{base: img.paddr, data: img.data[:n]}, img.arch, info)
				if err != nil {
					require.ErrorIs(t, err, ErrBadAddress, "cut at 0x%x", n)
					require.ErrorIs(t, err, errNotInDump, "cut at 0x%x", n)
					continue
				}
				ok++
				assert.Equal(t, full, log, "cut at 0x%x", n)
			}
			assert.Less(t, ok, len(img.data)/pageSize, "some cut must hit the log")
		})
	}
}

func TestNilArguments(t *testing.T) {
	img := newImage(t, X86_64, "6.1.0", 64<<10, 0)
	_, err := Read(img.memory(), X86_64, nil)
	assert.ErrorIs(t, err, ErrNoLogSymbols)
	_, err = Read(nil, X86_64, img.vmcoreinfo(t))
	assert.Error(t, err)
	assert.ErrorIs(t, CheckSystemMap(img.memory(), X86_64, nil, img.uts), ErrMissingKey)
	_, err = FindVMCOREINFO(nil, X86_64, "6.1.0", nil)
	assert.ErrorIs(t, err, ErrNotFound)
}
