package main

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// bashCompletion completes commands, the deadletters subcommands and, after
// a "-", the flags the command's own --help lists (so it never goes stale).
const bashCompletion = `# bash completion for gossip; zsh: autoload -U bashcompinit && bashcompinit first
_gossip() {
  local cur=${COMP_WORDS[COMP_CWORD]} cmd=${COMP_WORDS[1]} sub=
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "%s" -- "$cur")); return
  fi
  if [ "$cmd" = deadletters ]; then
    if [ "$COMP_CWORD" -eq 2 ]; then
      COMPREPLY=($(compgen -W "list show replay purge" -- "$cur")); return
    fi
    sub=${COMP_WORDS[2]}
  fi
  if [[ $cur == -* ]]; then
    local flags
    flags=$(${COMP_WORDS[0]} $cmd $sub --help 2>/dev/null | sed -n 's/^  \(-[a-z-]*\).*/-\1/p')
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
  fi
}
complete -o default -F _gossip gossip
`

func completion(_ context.Context, c *cli, args []string) error {
	c.flags()
	pos, err := c.parse(args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || pos[0] != "bash" {
		return usagef("want 'bash' (zsh: load it with bashcompinit)")
	}
	fmt.Fprintf(c.stdout, bashCompletion, strings.Join(slices.Sorted(maps.Keys(commands)), " "))
	return nil
}
