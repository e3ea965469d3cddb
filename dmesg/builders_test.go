package dmesg

import (
	"fmt"
	"testing"
)

// Builders that lay out a log in each layout inside an image, as the
// kernel does (doc/DMESG.md §3-5), for comparison with makedumpfile.

// testRecord is one message of a synthetic log.
type testRecord struct {
	ts   uint64
	text string
	dict string // structured layout only; never printed
}

// testMessages covers the cases of doc/DMESG.md §9 recipe 2: multi-line
// text, tab/CR/VT/FF, control bytes, NUL, UTF-8, a time of more than 10^5
// seconds, a trailing newline and an empty message.
var testMessages = []testRecord{
	{0, "Linux version test (builder@example) (gcc) #1 SMP", ""},
	{1500000, "Command line: console=ttyS0 panic=-1", ""},
	{2_000_123_456, "first line\nsecond line\nthird", "SUBSYSTEM=pci\x00DEVICE=+pci:0000:00:01.0"},
	{3_141_592_653, "tab\there cr\r vt\v ff\f end", ""},
	{4_000_000_999, "ctl \x01 esc \x1b del \x7f nul \x00 end", ""},
	{5_000_001_000, "utf8 caf\xc3\xa9 \xe2\x9c\x93 high \xff", ""},
	{6_000_000_000, "ends with a newline\n", ""},
	{7_000_000_000, "", ""},
	{123456_789012_345, "after more than a day: ts >= 10^5 s", ""},
	{123457_000000_000, "BUG: unable to handle kernel NULL pointer dereference at 0000000000000000", "SUBSYSTEM=cpu"},
	{123457_000100_000, "Kernel panic - not syncing: Fatal exception", ""},
}

// lpos/id helpers of the lockless ring.
const (
	descCommitted = 1
	descFinalized = 2
	descReserved  = 0
	noLPOS        = 0x3
)

// locklessOpts shapes a lockless ring.
type locklessOpts struct {
	countBits, sizeBits uint
	firstID             uint64 // id of the first record
	firstLpos           uint64 // logical position of the first block
	direct              bool   // put the ring's arrays in the direct map
	noDataless          bool   // give record 5 its data (vmcore-dmesg prints data-less records)
}

// buildLockless writes a printk_ringbuffer holding recs, plus a reserved
// record, a data-less record and a truncated one, and returns the records
// makedumpfile would print. The 6.1 x86_64 layout of doc/DMESG.md §3 is
// used (with 4-byte words on i386).
func buildLockless(t testing.TB, img *image, recs []testRecord, o locklessOpts) []testRecord {
	w := img.arch.WordSize()
	count, size := uint64(1)<<o.countBits, uint64(1)<<o.sizeBits
	descSize, infoSize := 3*w, 88
	descs := img.alloc(int(count)*descSize, 8)
	infos := img.alloc(int(count)*infoSize, 8)
	data := img.alloc(int(size), 8)
	rb := img.alloc(88, 8)
	prb := img.alloc(8, 8)
	ptr := func(va uint64) uint64 {
		if o.direct {
			return img.direct(va)
		}
		return va
	}
	img.putWord(prb, ptr(rb))

	var want []testRecord
	id, lpos := o.firstID, o.firstLpos
	for i, r := range recs {
		state, truncate, dataless := uint64(descFinalized), 0, false
		switch {
		case i == 3:
			state = descReserved
		case i == 5 && !o.noDataless:
			dataless = true
		case i == len(recs)-1:
			state = descCommitted
		case i == 1:
			truncate = 5
		}
		d := descs + (id%count)*uint64(descSize)
		in := infos + (id%count)*uint64(infoSize)
		img.putWord(d, state<<(8*w-2)|id)
		img.putUint(in+0, uint64(i), 8)
		img.putUint(in+8, r.ts, 8)
		img.putUint(in+16, uint64(len(r.text)+truncate), 2)
		if dataless {
			img.putWord(d+uint64(w), noLPOS)
			img.putWord(d+2*uint64(w), noLPOS)
		} else {
			blk := uint64(w + (len(r.text)+w-1)/w*w)
			begin, next := lpos, lpos+blk
			if begin/size != (next-1)/size { // the block wraps: the data restart the ring
				next = (next-1)/size*size + blk
				img.putWord(data+begin%size, id)
			}
			start := (next - blk) % size
			img.putWord(data+start, id)
			img.put(data+start+uint64(w), []byte(r.text))
			img.putWord(d+uint64(w), begin)
			img.putWord(d+2*uint64(w), next)
			lpos = next
		}
		if state != descReserved && !dataless {
			if truncate > 0 { // text_len claims more than the block holds
				avail := (len(r.text) + w - 1) / w * w
				r.text += string(make([]byte, min(len(r.text)+truncate, avail)-len(r.text)))
			}
			want = append(want, r)
		}
		id = (id + 1) & (uint64(1)<<(8*w-2) - 1)
	}
	head := (id - 1) & (uint64(1)<<(8*w-2) - 1)
	// desc_ring at 0, text_data_ring at 48 (x86_64 offsets of doc/DMESG.md §3).
	img.putUint(rb+0, uint64(o.countBits), 4)
	img.putWord(rb+8, ptr(descs))
	img.putWord(rb+16, ptr(infos))
	img.putWord(rb+24, head)
	img.putWord(rb+32, o.firstID)
	img.putUint(rb+48, uint64(o.sizeBits), 4)
	img.putWord(rb+56, ptr(data))
	img.putWord(rb+64, lpos)
	img.putWord(rb+72, o.firstLpos)
	img.key("SYMBOL(prb)=%x", prb)
	img.key("SYMBOL(printk_rb_static)=%x", rb)
	locklessKeys(img, descSize, infoSize)
	return want
}

// locklessKeys adds the SIZE and OFFSET keys of a 6.1 x86_64 kernel
// (doc/DMESG.md §3), with the word-sized fields of the image's arch.
func locklessKeys(img *image, descSize, infoSize int) {
	w := img.arch.WordSize()
	for _, kv := range [][2]any{
		{"SIZE(printk_ringbuffer)", 88}, {"OFFSET(printk_ringbuffer.desc_ring)", 0},
		{"OFFSET(printk_ringbuffer.text_data_ring)", 48}, {"OFFSET(printk_ringbuffer.fail)", 80},
		{"SIZE(prb_desc_ring)", 48}, {"OFFSET(prb_desc_ring.count_bits)", 0},
		{"OFFSET(prb_desc_ring.descs)", 8}, {"OFFSET(prb_desc_ring.infos)", 16},
		{"OFFSET(prb_desc_ring.head_id)", 24}, {"OFFSET(prb_desc_ring.tail_id)", 32},
		{"SIZE(prb_desc)", descSize}, {"OFFSET(prb_desc.state_var)", 0},
		{"OFFSET(prb_desc.text_blk_lpos)", w}, {"SIZE(prb_data_blk_lpos)", 2 * w},
		{"OFFSET(prb_data_blk_lpos.begin)", 0}, {"OFFSET(prb_data_blk_lpos.next)", w},
		{"SIZE(printk_info)", infoSize}, {"OFFSET(printk_info.seq)", 0},
		{"OFFSET(printk_info.ts_nsec)", 8}, {"OFFSET(printk_info.text_len)", 16},
		{"OFFSET(printk_info.caller_id)", 20}, {"OFFSET(printk_info.dev_info)", 24},
		{"SIZE(dev_printk_info)", 64}, {"LENGTH(printk_info_device)", 48},
		{"SIZE(prb_data_ring)", 32}, {"OFFSET(prb_data_ring.size_bits)", 0},
		{"OFFSET(prb_data_ring.data)", 8}, {"OFFSET(prb_data_ring.head_lpos)", 16},
		{"OFFSET(prb_data_ring.tail_lpos)", 24}, {"SIZE(atomic_long_t)", w},
		{"OFFSET(atomic_long_t.counter)", 0}, {"SIZE(latched_seq)", 24},
		{"OFFSET(latched_seq.val)", 8},
	} {
		img.key("%s=%d", kv[0], kv[1])
	}
}

// buildStructured writes printk_log records into a ring of blen bytes,
// starting at index first, wrapping with a zero-length marker as the kernel
// does, and returns the records makedumpfile would print.
func buildStructured(t testing.TB, img *image, recs []testRecord, blen, first int, structName string, direct bool) []testRecord {
	const hdr = 16
	buf := img.alloc(blen, 8)
	vars := img.alloc(64, 8)
	logBuf, logBufLen, firstIdx, nextIdx, clearIdx := vars, vars+8, vars+16, vars+20, vars+24
	p := buf
	if direct {
		p = img.direct(buf)
	}
	img.putWord(logBuf, p)
	img.putUint(logBufLen, uint64(blen), 4)
	idx := first
	for _, r := range recs {
		n := (hdr + len(r.text) + len(r.dict) + 7) &^ 7
		if idx+n+hdr > blen {
			img.put(buf+uint64(idx), make([]byte, hdr)) // len 0: wrap marker
			idx = 0
		}
		a := buf + uint64(idx)
		img.putUint(a, r.ts, 8)
		img.putUint(a+8, uint64(n), 2)
		img.putUint(a+10, uint64(len(r.text)), 2)
		img.putUint(a+12, uint64(len(r.dict)), 2)
		img.data[a-img.vaddr+14] = 0        // facility
		img.data[a-img.vaddr+15] = 6<<5 | 0 // level 6, no flags
		img.put(a+hdr, []byte(r.text+r.dict))
		idx += n
	}
	img.putUint(firstIdx, uint64(first), 4)
	img.putUint(nextIdx, uint64(idx), 4)
	img.putUint(clearIdx, uint64(first), 4)
	for name, a := range map[string]uint64{"log_buf": logBuf, "log_buf_len": logBufLen,
		"log_first_idx": firstIdx, "log_next_idx": nextIdx, "clear_idx": clearIdx} {
		img.key("SYMBOL(%s)=%x", name, a)
	}
	if structName != "" {
		img.key("SIZE(%s)=%d", structName, hdr)
		for f, off := range map[string]int{"ts_nsec": 0, "len": 8, "text_len": 10, "dict_len": 12} {
			img.key("OFFSET(%s.%s)=%d", structName, f, off)
		}
	}
	return recs
}

// buildLegacy writes text as a legacy ring of blen bytes and returns the
// bytes makedumpfile would print.
func buildLegacy(t testing.TB, img *image, text []byte, blen int, direct bool) []byte {
	ring, end, err := LegacyRing(text, blen)
	if err != nil {
		t.Fatal(err)
	}
	buf := img.alloc(blen, 32)
	img.put(buf, ring)
	w := img.arch.WordSize()
	endSize := 4
	if rel, _ := parseRelease(img.release); rel.less(2, 6, 25) {
		endSize = w
	}
	vars := img.alloc(64, 8)
	logBuf, logBufLen, logEnd, logged := vars, vars+8, vars+16, vars+24
	p := buf
	if direct {
		p = img.direct(buf)
	}
	img.putWord(logBuf, p)
	img.putUint(logBufLen, uint64(blen), 4)
	img.putUint(logEnd, end, endSize)
	img.putUint(logged, min(end, uint64(blen)), endSize)
	for name, a := range map[string]uint64{"log_buf": logBuf, "log_buf_len": logBufLen,
		"log_end": logEnd, "logged_chars": logged} {
		img.key("SYMBOL(%s)=%x", name, a)
	}
	if end > uint64(blen) {
		return text[len(text)-blen:]
	}
	return text
}

// legacyText is a boot log with <N> prefixes ending in an oops and a panic,
// of at least n bytes.
func legacyText(n int) []byte {
	var b []byte
	for i := 0; len(b) < n; i++ {
		b = fmt.Appendf(b, "<6>boot message %d: device probe ok\n", i)
	}
	b = append(b, "<1>Unable to handle kernel NULL pointer dereference at 0000000000000000 RIP: \n<4>Oops: 0002 [1] SMP \n<0>Kernel panic - not syncing: Oops\n"...)
	return b
}
