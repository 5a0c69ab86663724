# eval-modules.nix's results as "ok - NAME" / "not ok - NAME: DETAIL" lines, free of double
# quotes and backslashes, so that check.sh can read nix-instantiate's JSON with sed alone.
# A check whose evaluation throws (an unknown option, a failed type check, ...) is reported
# as "not ok - NAME: evaluation failed" without stopping the others; check.sh then shows
# the error by evaluating that check alone.
let
  clean = builtins.replaceStrings [ "\"" "\\" "\n" ] [ "'" "/" " " ];
  try = value: builtins.tryEval (builtins.deepSeq value value);
in
map (
  c:
  let
    ok = try c.ok;
    detail = try (builtins.toJSON c.detail);
  in
  if !ok.success then
    "not ok - ${clean c.name}: evaluation failed"
  else if ok.value then
    "ok - ${clean c.name}"
  else
    "not ok - ${clean c.name}: ${if detail.success then clean detail.value else "(detail does not evaluate)"}"
) (import ./eval-modules.nix)
