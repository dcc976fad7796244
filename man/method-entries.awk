# man/method-entries.awk - completes the COMMANDS section of fibersctl(1)
# from the method table.  Input: `fibersctl --help` (first file), then the
# page (second file).  Every command of the help's "Commands:" list that has
# no hand-written entry (a ".B", ".BR" or ".BI" line naming it) gets one,
# made of its argument template and help line, just before the section that
# follows COMMANDS.  So a new method is documented by its table row; prose
# written into the page replaces the generated entry.
FNR == NR {
	if ($0 ~ /^Commands:/) { incmds = 1; next }
	if (incmds && $0 !~ /^  [a-z]/) { incmds = 0 }
	if (incmds) {
		line = substr($0, 3)
		split(line, parts, /   */)
		name = parts[1]; sub(/ .*/, "", name)
		order[++n] = name; synopsis[name] = parts[1]; help[name] = parts[2]
	}
	next
}
{ page[++lines] = $0 }
/^\.(B|BR|BI) / {
	w = $2; gsub(/"/, "", w); documented[w] = 1
}
END {
	for (i = 1; i <= lines; i++) {
		if (page[i] ~ /^\.SH / && incommands) {
			for (j = 1; j <= n; j++) {
				c = order[j]
				if (documented[c]) continue
				print ".TP"
				s = synopsis[c]; gsub(/\\/, "\\\\", s); gsub(/-/, "\\-", s)
				print ".B \"" s "\""
				h = help[c]; sub(/^./, toupper(substr(h, 1, 1)), h)
				print h "."
			}
			incommands = 0
		}
		if (page[i] ~ /^\.SH COMMANDS/) incommands = 1
		print page[i]
	}
}
