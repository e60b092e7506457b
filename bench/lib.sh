# What the comparison scripts share; source it.

# An awk function for their results files, lines of "LABEL name=value
# ...": field(line, name) is the value of name, or "".  Put it in front
# of an awk program: awk "$AWK_FIELD"'...'.
AWK_FIELD='
function field(line, name,    n, i, kv) {
	n = split(line, kv, " ")
	for (i = 2; i <= n; i++)
		if (index(kv[i], name "=") == 1)
			return substr(kv[i], length(name) + 2)
	return ""
}
'
