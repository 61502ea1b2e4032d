package protocol

// BTFParams configures the "btf" check.
type BTFParams struct {
	// Require lists BTF type names that must be present in vmlinux BTF.
	Require []string `json:"require" yaml:"require"`
}

// BTFCheck is the "btf" check: is vmlinux BTF there, does it parse, and
// does it have the types the software under test needs?
var BTFCheck = declare("btf", RunnerAgent, BTFParams{
	Require: []string{"task_struct", "sk_buff", "sock"},
})

// Validate implements paramsValidator.
func (p BTFParams) Validate() []ParamProblem {
	if len(p.Require) == 0 {
		return []ParamProblem{{Key: []string{"require"}, Msg: "require: expected at least one BTF type name, like task_struct"}}
	}
	return nil
}

// BTFDetails is what the "btf" check reports in Result.Details.
type BTFDetails struct {
	VmlinuxPresent bool `json:"vmlinux_present"`
	// External names the external BTF the types were read from (see
	// ExternalBTFInfo), "" when they are the kernel's own.
	External     string            `json:"external,omitempty"`
	Types        int               `json:"types"`
	Found        []string          `json:"found"`
	Missing      []string          `json:"missing"`
	ModuleBTF    int               `json:"module_btf"`
	Config       map[string]string `json:"config"`
	ConfigSource string            `json:"config_source,omitempty"`
}
