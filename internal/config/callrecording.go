package config

import (
	"fmt"

	"github.com/tapedeck/tapedeck/internal/recname"
)

// CallRecording names the files of calls recorded by the users' policy, as
// wazo-agid's call_recording section does.
type CallRecording struct {
	// FilenameTemplate is a Jinja2 template over srcnum, dstnum, timestamp,
	// local_time, utc_time, base_context and tenant_uuid (default
	// "user-{{ srcnum }}-{{ dstnum }}-{{ timestamp }}"). Relative names
	// land under the recordings root; a template starting with "/" names
	// an absolute path, which must lie in one of AllowedDirs.
	FilenameTemplate string `yaml:"filename_template"`
	// FilenameExtension is the recording format and the file's extension
	// (default wav).
	FilenameExtension string `yaml:"filename_extension"`
	// AllowedDirs are the absolute directories outside the recordings root
	// that absolute names may use (default: none).
	AllowedDirs []string `yaml:"allowed_dirs"`
	// Stereo records the caller on the left channel and the callee on the
	// right (wav only) instead of one mixed channel.
	Stereo bool `yaml:"stereo"`
}

// Namer compiles call_recording into the file namer of policy recordings.
func (c *Config) Namer() (*recname.Namer, error) {
	return recname.New(recname.Options{
		Template:    c.CallRecording.FilenameTemplate,
		Extension:   c.CallRecording.FilenameExtension,
		Root:        c.RecordingsDir(),
		AllowedDirs: c.CallRecording.AllowedDirs,
	})
}

// checkCallRecording fills the defaults and compiles the template: one
// that does not parse, uses an unknown variable or would write outside the
// recordings root and the allowed directories is reported here (and by
// tapedeck -t), never at a call.
func (c *Config) checkCallRecording() []error {
	cr := &c.CallRecording
	if cr.FilenameTemplate == "" {
		cr.FilenameTemplate = recname.DefaultTemplate
	}
	if cr.FilenameExtension == "" {
		cr.FilenameExtension = recname.DefaultExtension
	}
	if _, err := c.Namer(); err != nil {
		return []error{fmt.Errorf("call_recording: %w", err)}
	}
	return nil
}
