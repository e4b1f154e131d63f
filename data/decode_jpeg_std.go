//go:build !cgo || noturbo

package data

// jpegDecoder names the JPEG decoder of this build.
const jpegDecoder = "image/jpeg"

// decodeJPEG decodes with image/jpeg at full size, then reduces by the
// factor libjpeg-turbo's DCT scaling would use (see DecodeImageAtLeast).
func decodeJPEG(b []byte, dst []uint8, minSide int) ([]uint8, int, int, error) {
	f := 1
	if minSide > 0 {
		cfg, err := jpegConfig(b)
		if err != nil {
			return nil, 0, 0, err
		}
		f = JPEGReduction(cfg.Height, cfg.Width, minSide)
	}
	return decodeStd(b, dst, true, f)
}
