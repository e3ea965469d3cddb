package diskdump

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSubHeaderRoundTrip(t *testing.T) {
	for _, a := range Arches {
		t.Run(a.String(), func(t *testing.T) {
			n := a.GRegsSize() / 8
			if !a.Is64() {
				n = a.GRegsSize() / 4
			}
			regs := make([]uint64, n)
			for i := range regs {
				regs[i] = uint64(i*0x101 + 1)
			}
			var sw []uint64
			if a == ArchIA64 {
				sw = []uint64{0xa000, 0xb000}
			}
			raw, err := EncodeSubHeader(a, a.PageSize(), regs, sw)
			require.NoError(t, err)
			s, err := DecodeSubHeader(a, raw)
			require.NoError(t, err)
			assert.Equal(t, regs, s.Regs)
			assert.Len(t, s.GRegs(), a.GRegsSize())
			if a == ArchIA64 {
				assert.Equal(t, sw, s.SwitchStacks[:2])
				assert.Zero(t, s.SwitchStacks[2])
			}
		})
	}
}

func TestSubHeaderNamedRegs(t *testing.T) {
	regs := make([]uint64, 27)
	regs[16] = 0xffffffff80123456 // rip
	regs[19] = 0xffff810001234000 // rsp
	raw, err := EncodeSubHeader(ArchX86_64, 4096, regs, nil)
	require.NoError(t, err)
	assert.Equal(t, byte(0x56), raw[16*8], "little-endian rip at word 16")
	s, err := DecodeSubHeader(ArchX86_64, raw)
	require.NoError(t, err)
	rip, ok := s.Reg("rip")
	assert.True(t, ok)
	assert.Equal(t, uint64(0xffffffff80123456), rip)
	rsp, _ := s.Reg("rsp")
	assert.Equal(t, uint64(0xffff810001234000), rsp)
	_, ok = s.Reg("nope")
	assert.False(t, ok)
	assert.Len(t, RegNames(ArchI386), 17)
	assert.Len(t, RegNames(ArchPPC64), 48)
}

func TestSubHeaderZeroAndTruncated(t *testing.T) {
	s, err := DecodeSubHeader(ArchPPC64, make([]byte, 4096))
	require.NoError(t, err)
	assert.Nil(t, s.Regs, "an all-zero register block means no registers")
	_, err = DecodeSubHeader(ArchX86_64, make([]byte, 100))
	assert.ErrorIs(t, err, ErrTruncated)
	_, err = EncodeSubHeader(ArchI386, 4096, make([]uint64, 18), nil)
	assert.ErrorIs(t, err, ErrCorrupt)
}

func FuzzDecodeSubHeader(f *testing.F) {
	for _, a := range Arches {
		raw, _ := EncodeSubHeader(a, 4096, []uint64{1, 2, 3}, nil)
		f.Add(uint8(a), raw)
	}
	f.Fuzz(func(t *testing.T, arch uint8, raw []byte) {
		a := Arch(arch % 5)
		s, err := DecodeSubHeader(a, raw)
		if err != nil {
			return
		}
		if a == ArchUnknown || len(s.Regs) == 0 {
			return
		}
		out, err := EncodeSubHeader(a, len(raw), s.Regs, nil)
		if err != nil {
			return // ia64 switch stacks may not fit a shorter block
		}
		s2, err := DecodeSubHeader(a, out)
		require.NoError(t, err)
		require.Equal(t, s.Regs, s2.Regs)
	})
}
