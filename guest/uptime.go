package guest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// uptimeMS returns the system uptime in milliseconds from a /proc/uptime
// style file ("12.34 5.67").
func uptimeMS(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return 0, fmt.Errorf("parse %s: empty", path)
	}
	s, err := strconv.ParseFloat(fields[0], 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return int64(s * 1000), nil
}
