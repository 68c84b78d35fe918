# bash completion for scaleplan (installed to share/bash-completion/completions/scaleplan).
# Subcommands come from `scaleplan --help`, flags from `scaleplan CMD --help`, and the values of
# --model/--cluster/--stack from `scaleplan presets --kind K`, so the script follows the binary.
_scaleplan() {
  local cur prev cmd words_help
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  cmd=""
  local i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case "${COMP_WORDS[i]}" in -*) ;; *) cmd="${COMP_WORDS[i]}"; break ;; esac
  done
  case "$prev" in
    --model)   COMPREPLY=($(compgen -W "$(scaleplan presets --kind models 2>/dev/null | cut -d: -f2)" -f -- "$cur")); return ;;
    --cluster) COMPREPLY=($(compgen -W "$(scaleplan presets --kind clusters 2>/dev/null | cut -d: -f2)" -f -- "$cur")); return ;;
    --stack)   COMPREPLY=($(compgen -W "$(scaleplan presets --kind stacks 2>/dev/null | cut -d: -f2)" -f -- "$cur")); return ;;
    --runs|--out|--trace|--data|--save|--load) COMPREPLY=($(compgen -f -- "$cur")); return ;;
  esac
  if [ -z "$cmd" ]; then
    words_help=$(scaleplan --help 2>/dev/null | awk '/^Subcommands:/ {s = 1; next} s && NF {print $1}')
    COMPREPLY=($(compgen -W "$words_help --help --version" -- "$cur"))
  else
    words_help=$(scaleplan "$cmd" --help 2>/dev/null | grep -o -- '--[a-z][a-z0-9-]*' | sort -u)
    COMPREPLY=($(compgen -W "$words_help" -- "$cur"))
  fi
}
complete -F _scaleplan scaleplan
