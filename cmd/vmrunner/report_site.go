package main

import (
	"fmt"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vmrunner/vmrunner/report"
)

func newReportSiteCmd() *cobra.Command {
	var opts report.SiteOptions
	cmd := &cobra.Command{
		Use:   "site OUT RUN...",
		Short: "Write a static site of many runs (one a night): history, trends, first bad nights",
		Long: `Write a static site of many runs, one a night, into the directory OUT: one
index.html with the history grid (nights × kernel/arch, each cell the
night's worst verdict, linking to that night's report), each check's pass
rate and duration over the nights, each verifier program's instructions
processed against the kernel's limit over the nights, and the first bad
night of every check that turned red with the vmrunner commit and kernel
release before and after. Charts are SVG drawn by vmrunner: the pages load
nothing from elsewhere and need no JavaScript, so OUT can be served as it is
(GitHub Pages, any web server, file://).

Each night is copied into OUT/nights/<run-id>/ with its results.json, its
report.html and the files it links, so the next night's site is made from
the last one's: vmrunner report site site site/nights/*/ runs/latest.
OUT is replaced whole: it must be new, empty, or a site written before.

Exit codes:
  0  the site was written
  2  bad input: a RUN that cannot be read, two runs with one id, an OUT
     that is not a site`,
		Args: usageArgs(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Keep < 0 {
				return usagef("--keep: %d is negative", opts.Keep)
			}
			var runs []report.Run
			for _, p := range args[1:] {
				run, err := loadRun(p)
				if err != nil {
					return err
				}
				runs = append(runs, run)
			}
			st, err := report.WriteSite(args[0], runs, opts)
			if err != nil {
				return usageError{err}
			}
			w := cmd.OutOrStdout()
			for _, id := range st.Dropped {
				fmt.Fprintf(w, "dropped %s (--keep %d)\n", id, opts.Keep)
			}
			fmt.Fprintf(w, "site: %s  nights %d  index.html %s  whole site %s in %d files\n", filepath.Join(args[0], report.SiteIndex), st.Nights,
				byteSize(st.IndexSize), byteSize(st.TotalSize), st.Files)
			return nil
		},
	}
	cmd.Flags().IntVar(&opts.Keep, "keep", 0, "keep only the newest N nights (0: all)")
	cmd.Flags().StringVar(&opts.CommitURL, "commit-url", "", "link commits: this URL with the hash appended, e.g. https://github.com/OWNER/REPO/commit/")
	cmd.Flags().StringVar(&opts.Title, "title", "", "the page's title (default \"vmrunner nights\")")
	return cmd
}

func byteSize(n int64) string {
	if n < 1<<20 {
		return fmt.Sprintf("%d bytes (%.0f KiB)", n, float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes (%.1f MiB)", n, float64(n)/(1<<20))
}
