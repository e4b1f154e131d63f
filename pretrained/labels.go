package pretrained

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ReadLabels reads n class names from path: a JSON object mapping "0" … to
// names ({"0": "tench", …}, as Keras's imagenet_class_index and the npm
// package's labels.json; a value may be a [wnid, name] pair), a JSON array
// of names, or a text file with one name per line. It must name exactly n
// classes.
func ReadLabels(path string, n int) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	var names []string
	switch t := bytes.TrimSpace(b); {
	case len(t) > 0 && t[0] == '{':
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(t, &obj); err != nil {
			return nil, fmt.Errorf("labels %s: %w", path, err)
		}
		names = make([]string, len(obj))
		for k, raw := range obj {
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(obj) {
				return nil, fmt.Errorf("labels %s: key %q: want class indices 0 to %d", path, k, len(obj)-1)
			}
			var s string
			var pair []string
			switch {
			case json.Unmarshal(raw, &s) == nil:
			case json.Unmarshal(raw, &pair) == nil && len(pair) == 2:
				s = pair[1]
			default:
				return nil, fmt.Errorf("labels %s: class %s: want a name or a [id, name] pair", path, k)
			}
			names[i] = s
		}
	case len(t) > 0 && t[0] == '[':
		if err := json.Unmarshal(t, &names); err != nil {
			return nil, fmt.Errorf("labels %s: %w (want a JSON array of names)", path, err)
		}
	default:
		for _, l := range strings.Split(strings.TrimRight(string(b), "\r\n"), "\n") {
			names = append(names, strings.TrimSpace(l))
		}
	}
	if len(names) != n {
		return nil, fmt.Errorf("labels %s: %d names, the model has %d classes", path, len(names), n)
	}
	for i, s := range names {
		if s == "" {
			return nil, fmt.Errorf("labels %s: class %d has an empty name", path, i)
		}
	}
	return names, nil
}
