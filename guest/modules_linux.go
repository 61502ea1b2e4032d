package guest

import (
	"errors"
	"fmt"
	"io/fs"
	"log"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vmrunner/vmrunner/protocol"
)

// loadModules loads the modules listed in the file list, in order. A module
// already loaded is fine; any other failure is logged and returned as a note
// for the host, and loading goes on: the port may still appear.
func loadModules(list string, logger *log.Logger) []protocol.Log {
	b, err := os.ReadFile(list)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // a kernel without modules
	}
	if err != nil {
		logger.Printf("read module list: %v", err)
		return []protocol.Log{{Level: "error", Text: fmt.Sprintf("read module list: %v", err)}}
	}
	var notes []protocol.Log
	start := time.Now()
	loaded := 0
	for _, path := range strings.Fields(string(b)) {
		if err := loadModule(path); err != nil {
			logger.Printf("load module %s: %v", path, err)
			notes = append(notes, protocol.Log{Level: "error", Text: fmt.Sprintf("load module %s: %v", path, err)})
			continue
		}
		loaded++
	}
	text := fmt.Sprintf("loaded %d modules in %s", loaded, time.Since(start).Round(time.Millisecond))
	logger.Print(text)
	return append(notes, protocol.Log{Level: "info", Text: text})
}

func loadModule(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	err = unix.FinitModule(int(f.Fd()), "", 0)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}
