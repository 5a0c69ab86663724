# Checks flake.lock without fetching anything: the format Nix 2.8+ reads (version 7), one
# node per input of flake.nix, each `original` equal to the URL in flake.nix (otherwise
# `nix flake metadata --no-update-lock-file` would try to fetch), and a `locked` entry with a
# full commit, an SRI sha256 narHash and a plausible lastModified. Whether narHash really is
# the hash of that commit can only be seen by fetching it; see docs/nix.md.
#
# Returns a list of problems (strings without quotes); empty means fine.
let
  flake = import ../../flake.nix;
  lock = builtins.fromJSON (builtins.readFile ../../flake.lock);
  rootInputs = lock.nodes.${lock.root}.inputs or { };
  inputNames = builtins.attrNames flake.inputs;

  isHex40 = s: builtins.match "[0-9a-f]{40}" s != null;
  isSriSha256 = s: builtins.match "sha256-[A-Za-z0-9+/]{43}=" s != null;

  githubUrl =
    o:
    "github:${o.owner}/${o.repo}"
    + (if o ? ref then "/${o.ref}" else "")
    + (if o ? rev then "/${o.rev}" else "");

  checkInput =
    name:
    let
      node = lock.nodes.${rootInputs.${name}};
      locked = node.locked;
      original = node.original;
      url = flake.inputs.${name}.url;
    in
    if !(rootInputs ? ${name}) then
      [ "input ${name} of flake.nix is not in flake.lock" ]
    else if original.type != "github" || locked.type != "github" then
      [ "input ${name}: only github inputs are checked here" ]
    else
      (if githubUrl original != url then
        [ "input ${name}: flake.lock has ${githubUrl original}, flake.nix has ${url}" ]
      else
        [ ])
      ++ (if !(isHex40 (locked.rev or "")) then [ "input ${name}: locked.rev is not a full commit hash" ] else [ ])
      ++ (if !(isSriSha256 (locked.narHash or "")) then [ "input ${name}: locked.narHash is not an SRI sha256 hash" ] else [ ])
      ++ (if !(builtins.isInt (locked.lastModified or null)) || locked.lastModified < 1700000000 then
        [ "input ${name}: locked.lastModified is missing or before 2023" ]
      else
        [ ])
      ++ (if (locked.owner or "") != original.owner || (locked.repo or "") != original.repo then
        [ "input ${name}: locked owner/repo differ from the original" ]
      else
        [ ]);
in
(if lock.version or 0 != 7 then [ "flake.lock version is not 7" ] else [ ])
++ (
  let
    extra = builtins.filter (n: !(builtins.elem n inputNames)) (builtins.attrNames rootInputs);
  in
  map (n: "flake.lock has input ${n}, which flake.nix does not declare") extra
)
++ builtins.concatMap checkInput inputNames
