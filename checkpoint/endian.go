package checkpoint

import (
	"encoding/binary"
	"unsafe"
)

// nativeLittle reports whether float32 values are stored little-endian in
// memory, as safetensors stores them; then tensors are written and read as
// one block copy instead of element by element.
var nativeLittle = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// f32Bytes views d's memory as bytes (no copy). Only for nativeLittle hosts.
func f32Bytes(d []float32) []byte {
	if len(d) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(d))), 4*len(d))
}
