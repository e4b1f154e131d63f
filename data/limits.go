package data

// MaxImageSize bounds every image side length a user can ask for
// (image_size, crop_size, prepare --image-size): a larger size is refused
// before anything is allocated.
const MaxImageSize = 4096
