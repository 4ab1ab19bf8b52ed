// deploycheck validates the Docker deployment files offline, with the libraries Docker itself uses
// (no Docker engine or registry needed; scripts/validate-deploy.sh builds and runs it):
//
//	deploycheck dockerfile <context> <Dockerfile>...
//	    BuildKit's Dockerfile frontend converts every stage, as `docker build --check` does, with base
//	    image metadata stubbed; any lint warning or error fails. Every COPY/ADD source from the build
//	    context must exist and survive the Dockerfile's own <Dockerfile>.dockerignore.
//	deploycheck compose <compose.yml>
//	    compose-go loads the file as `docker compose config` does (Compose spec schema, interpolation,
//	    merge keys, every profile); build contexts, Dockerfiles and bind-mount sources must exist.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/frontend/dockerfile/dockerfile2llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	digest "github.com/opencontainers/go-digest"
)

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: deploycheck dockerfile <context> <Dockerfile>... | deploycheck compose <compose.yml>")
		os.Exit(2)
	}
	var problems []string
	switch os.Args[1] {
	case "dockerfile":
		if len(os.Args) < 4 {
			fmt.Fprintln(os.Stderr, "usage: deploycheck dockerfile <context> <Dockerfile>...")
			os.Exit(2)
		}
		for _, f := range os.Args[3:] {
			problems = append(problems, checkDockerfile(os.Args[2], f)...)
		}
	case "compose":
		problems = checkCompose(os.Args[2])
	default:
		fmt.Fprintf(os.Stderr, "unknown check %q\n", os.Args[1])
		os.Exit(2)
	}
	for _, p := range problems {
		fmt.Fprintln(os.Stderr, "  -", p)
	}
	if len(problems) > 0 {
		os.Exit(1)
	}
}

// stubResolver answers base-image metadata lookups without a registry: a Linux image with a PATH.
type stubResolver struct{}

func (stubResolver) ResolveImageConfig(_ context.Context, ref string, _ sourceresolver.Opt) (string, digest.Digest, []byte, error) {
	cfg := map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Env": []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{digest.FromString(ref).String()}},
	}
	dt, err := json.Marshal(cfg)
	return ref, "", dt, err
}

func checkDockerfile(contextDir, file string) []string {
	var problems []string
	dt, err := os.ReadFile(file)
	if err != nil {
		return []string{err.Error()}
	}
	ctx := context.Background()
	src := llb.Local("dockerfile")
	sm := llb.NewSourceMap(&src, file, "Dockerfile", dt)
	if sm.Definition, err = src.Marshal(ctx); err != nil {
		return []string{err.Error()}
	}
	res, err := dockerfile2llb.DockerfileLint(ctx, dt, dockerfile2llb.ConvertOpt{
		SourceMap:    sm,
		MetaResolver: stubResolver{},
	})
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", file, err)}
	}
	if res.Error != nil {
		problems = append(problems, fmt.Sprintf("%s: %s", file, res.Error.Message))
	}
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil && len(w.Location.Ranges) > 0 {
			line = int(w.Location.Ranges[0].Start.Line)
		}
		problems = append(problems, fmt.Sprintf("%s:%d: %s: %s", file, line, w.RuleName, w.Detail))
	}

	// COPY/ADD sources from the build context, against <Dockerfile>.dockerignore (BuildKit prefers it
	// to the context's .dockerignore).
	var excludes []string
	if f, err := os.Open(file + ".dockerignore"); err == nil {
		excludes, err = ignorefile.ReadAll(f)
		f.Close()
		if err != nil {
			return append(problems, fmt.Sprintf("%s.dockerignore: %v", file, err))
		}
	}
	pm, err := patternmatcher.New(excludes)
	if err != nil {
		return append(problems, fmt.Sprintf("%s.dockerignore: %v", file, err))
	}
	ast, err := parser.Parse(strings.NewReader(string(dt)))
	if err != nil {
		return append(problems, fmt.Sprintf("%s: %v", file, err))
	}
	stages, _, err := instructions.Parse(ast.AST, nil)
	if err != nil {
		return append(problems, fmt.Sprintf("%s: %v", file, err))
	}
	copies := 0
	for _, st := range stages {
		for _, cmd := range st.Commands {
			var srcs []string
			switch c := cmd.(type) {
			case *instructions.CopyCommand:
				if c.From != "" {
					continue
				}
				srcs = c.SourcePaths
			case *instructions.AddCommand:
				srcs = c.SourcePaths
			default:
				continue
			}
			for _, src := range srcs {
				copies++
				rel := filepath.Clean(strings.TrimPrefix(src, "/"))
				if _, err := os.Stat(filepath.Join(contextDir, rel)); err != nil {
					problems = append(problems, fmt.Sprintf("%s: COPY source %q is not in the build context %s", file, src, contextDir))
					continue
				}
				if excluded, _ := pm.MatchesOrParentMatches(filepath.ToSlash(rel)); excluded {
					problems = append(problems, fmt.Sprintf("%s: COPY source %q is excluded by %s.dockerignore", file, src, filepath.Base(file)))
				}
			}
		}
	}
	if len(problems) == 0 {
		fmt.Printf("ok   %s: %d stages, %d context sources, BuildKit lint clean\n", file, len(stages), copies)
	}
	return problems
}

func checkCompose(file string) []string {
	ctx := context.Background()
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithOsEnv,
		cli.WithInterpolation(true),
		cli.WithResolvedPaths(true),
		cli.WithProfiles([]string{"*"}),
	)
	if err != nil {
		return []string{err.Error()}
	}
	project, err := opts.LoadProject(ctx)
	if err != nil {
		return []string{fmt.Sprintf("%s: %v", file, err)}
	}
	var problems []string
	for _, name := range project.ServiceNames() {
		svc := project.Services[name]
		if svc.Build != nil {
			if _, err := os.Stat(svc.Build.Context); err != nil {
				problems = append(problems, fmt.Sprintf("service %s: build context %s: %v", name, svc.Build.Context, err))
			}
			df := svc.Build.Dockerfile
			if !filepath.IsAbs(df) {
				df = filepath.Join(svc.Build.Context, df)
			}
			if _, err := os.Stat(df); err != nil {
				problems = append(problems, fmt.Sprintf("service %s: Dockerfile %s: %v", name, df, err))
			}
		}
		for _, v := range svc.Volumes {
			if v.Type == types.VolumeTypeBind {
				if _, err := os.Stat(v.Source); err != nil {
					problems = append(problems, fmt.Sprintf("service %s: bind mount source %s: %v", name, v.Source, err))
				}
			}
		}
	}
	if len(problems) == 0 {
		fmt.Printf("ok   %s: project %q, services %s, volumes %d\n", file, project.Name, strings.Join(project.ServiceNames(), ", "), len(project.Volumes))
	}
	return problems
}
