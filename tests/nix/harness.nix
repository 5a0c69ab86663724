# What the checks share: nixpkgs' real lib, the stand-in package set, and NixOS and
# home-manager evaluations made of the real module system (lib.evalModules, with the class
# each one checks) and the host options in ./options.
let
  lib = import ./lib.nix;
  inherit (builtins)
    concatMap
    filter
    isList
    isBool
    ;

  stubPkgs = args: import ./stub/pkgs.nix ({ inherit lib; } // args);

  # A unit value as systemd reads it: a list of words per key (so that `A=x y` and two
  # lines `A=x`, `A=y` compare equal), booleans spelt as NixOS writes them.
  words =
    value:
    concatMap (
      v:
      filter (w: w != "" && !isList w) (
        builtins.split "[ \t]+" (
          if isBool v then
            (if v then "true" else "false")
          else
            toString v
        )
      )
    ) (lib.toList value);
in
rec {
  inherit lib stubPkgs;

  # A NixOS system made of `modules`; `extraArgs` are passed as module arguments (the
  # test nodes' `nodes`).
  nixos =
    {
      modules,
      pkgs ? stubPkgs { },
      extraArgs ? { },
    }:
    lib.evalModules {
      class = "nixos";
      modules = [ ./options/nixos.nix ] ++ modules;
      specialArgs = {
        inherit pkgs;
      }
      // extraArgs;
    };

  # A home-manager configuration for alice.
  homeManager =
    {
      modules,
      system ? "x86_64-linux",
      pkgs ? stubPkgs { inherit system; },
    }:
    lib.evalModules {
      class = "homeManager";
      modules = [
        ./options/home-manager.nix
        {
          home.username = "alice";
          home.homeDirectory = "/home/alice";
        }
      ]
      ++ modules;
      specialArgs.pkgs = pkgs;
    };

  failedAssertions = config: map (a: a.message) (filter (a: !a.assertion) config.assertions);

  # A NixOS unit as the files systemd reads (nixos/lib/systemd-lib.nix): [Unit] from
  # unitConfig (which the list options feed), the unit's own section, and [Install] for
  # what NixOS makes links for. Each key holds its words (see `words`).
  renderUnit =
    unit:
    let
      section = lib.mapAttrs (_: words);
      own =
        if unit ? serviceConfig then
          {
            Service =
              unit.serviceConfig
              // lib.optionalAttrs (unit.environment != { }) {
                Environment = lib.mapAttrsToList (name: value: "${name}=${toString value}") (
                  lib.filterAttrs (_: v: v != null) unit.environment
                );
              };
          }
        else if unit ? socketConfig then
          {
            Socket =
              unit.socketConfig
              // lib.optionalAttrs (unit.listenStreams != [ ]) { ListenStream = unit.listenStreams; }
              // lib.optionalAttrs (unit.listenDatagrams != [ ]) { ListenDatagram = unit.listenDatagrams; };
          }
        else
          { Timer = unit.timerConfig; };
    in
    lib.mapAttrs (_: section) (
      {
        Unit = unit.unitConfig;
      }
      // own
      // lib.optionalAttrs (unit.wantedBy != [ ]) { Install.WantedBy = unit.wantedBy; }
    );

  # A unit file (INI) the same way: comments and blank lines dropped, `Key=` kept empty.
  parseUnitFile =
    text:
    let
      lines = filter (l: l != "" && !lib.hasPrefix "#" l && !lib.hasPrefix ";" l) (
        lib.splitString "\n" text
      );
      step =
        acc: line:
        let
          header = builtins.match "[[]([A-Za-z]+)[]]" line;
          pair = builtins.match "([A-Za-z]+)=(.*)" line;
        in
        if header != null then
          acc // { current = builtins.head header; }
        else if pair != null then
          let
            key = builtins.elemAt pair 0;
            old = acc.sections.${acc.current}.${key} or [ ];
          in
          acc
          // {
            sections = lib.recursiveUpdate acc.sections {
              ${acc.current}.${key} = old ++ words (builtins.elemAt pair 1);
            };
          }
        else
          throw "not a unit-file line: ${line}";
    in
    (builtins.foldl' step {
      current = null;
      sections = { };
    } lines).sections;

  # Forces every option that has a value (a definition or a default), so that a misspelled
  # option or a wrong value anywhere fails: evaluation is lazy, and an option nobody reads
  # is otherwise never looked at. NixOS units are forced the way NixOS writes them (their
  # undefined startLimitBurst and friends are never read). Removed options (mkRemovedOption-
  # Module, invisible) are left to their assertion, as in NixOS.
  force =
    eval:
    let
      unitCollections = map (path: [ "systemd" ] ++ path) [
        [ "services" ]
        [ "sockets" ]
        [ "timers" ]
        [
          "user"
          "services"
        ]
        [
          "user"
          "sockets"
        ]
        [
          "user"
          "timers"
        ]
      ];
      isNixosUnits = opt: eval.class == "nixos" && builtins.elem opt.loc unitCollections;
      forceOption =
        opt:
        if !opt.isDefined || (opt.visible or true) == false then
          null
        else if isNixosUnits opt then
          lib.mapAttrs (_: unit: [
            (renderUnit unit)
            unit.restartTriggers
          ]) opt.value
        else
          opt.value;
    in
    builtins.deepSeq (map forceOption (lib.collect lib.isOption (removeAttrs eval.options [ "_module" ]))) true;
}
