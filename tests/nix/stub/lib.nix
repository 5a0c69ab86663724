# A small stand-in for the parts of nixpkgs' `lib` that this repository's Nix files use, so
# that the modules can be evaluated where no nixpkgs is available (CI has only Debian's
# nix-bin). It mirrors nixpkgs lib/modules.nix, lib/options.nix and lib/types.nix closely
# enough to catch the mistakes that matter here:
#
# - `evalModules` follows `imports`, calls module functions with { config, options, lib,
#   pkgs, ... }, and accepts both `{ options; config; }` modules and shorthand modules;
# - definitions under mkIf / mkMerge / mkOverride (mkDefault, mkForce, mkOptionDefault)
#   are pushed down and discharged as lib/modules.nix does (pushDownProperties,
#   dischargeProperties, filterOverrides), so `mkIf cfg.enable` needs no evaluation of
#   cfg.enable to see which options a module defines;
# - a definition of an option that no module declares is an error, worded like the real
#   one ("The option `a.b' does not exist"); so is a module attribute other than
#   imports/options/config/meta/_file/key in a module that has `options` or `config`;
# - types check each definition and merge like nixpkgs: one value for scalars (equal
#   values may repeat; a package only once), concatenation for lists and `lines`,
#   per-attribute merging for `attrsOf`, nested evaluation for `submodule`.
#
# Anything not used here is left out on purpose; a module that reaches for it fails with
# "attribute missing", which is a reminder to add it here the way nixpkgs defines it.
let
  b = builtins;

  # --- lists, attrs, strings (lib/lists.nix, lib/attrsets.nix, lib/strings.nix) ---
  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  optionalAttrs = cond: as: if cond then as else { };
  optionalString = cond: s: if cond then s else "";
  concatMap = f: xs: b.concatLists (map f xs);
  concatStringsSep = b.concatStringsSep;
  concatMapStringsSep =
    sep: f: xs:
    concatStringsSep sep (map f xs);
  hasPrefix = pre: s: b.substring 0 (b.stringLength pre) s == pre;
  hasSuffix =
    suf: s:
    let
      ls = b.stringLength s;
      lf = b.stringLength suf;
    in
    lf <= ls && b.substring (ls - lf) lf s == suf;
  hasInfix =
    infix: s:
    let
      li = b.stringLength infix;
      ls = b.stringLength s;
      go = i: i + li <= ls && (b.substring i li s == infix || go (i + 1));
    in
    go 0;
  mapAttrsToList = f: as: map (n: f n as.${n}) (b.attrNames as);
  genAttrs =
    names: f:
    b.listToAttrs (
      map (n: {
        name = n;
        value = f n;
      }) names
    );
  attrByPath =
    path: default: set:
    if path == [ ] then
      set
    else if b.isAttrs set && set ? ${b.head path} then
      attrByPath (b.tail path) default set.${b.head path}
    else
      default;
  toList = x: if b.isList x then x else [ x ];
  unique = b.foldl' (acc: x: if b.elem x acc then acc else acc ++ [ x ]) [ ];
  last = xs: b.elemAt xs (b.length xs - 1);
  isDerivation = x: b.isAttrs x && (x.type or null) == "derivation";
  isStringLike = x: b.isString x || b.isPath x || (b.isAttrs x && x ? outPath);
  showOption = concatStringsSep ".";
  getExe =
    x:
    "${x}/bin/${
      x.meta.mainProgram or (throw "getExe: ${x.name or "package"} has no meta.mainProgram")
    }";
  importTOML = path: b.fromTOML (b.readFile path);

  # --- module properties (lib/modules.nix) ---
  mkIf = condition: content: {
    _type = "if";
    inherit condition content;
  };
  mkMerge = contents: {
    _type = "merge";
    inherit contents;
  };
  mkOverride = priority: content: {
    _type = "override";
    inherit priority content;
  };
  defaultOverridePriority = 100;
  mkOptionDefault = mkOverride 1500;
  mkDefault = mkOverride 1000;
  mkForce = mkOverride 50;

  pushDownProperties =
    cfg:
    if (cfg._type or "") == "merge" then
      concatMap pushDownProperties cfg.contents
    else if (cfg._type or "") == "if" then
      map (b.mapAttrs (_: v: mkIf cfg.condition v)) (pushDownProperties cfg.content)
    else if (cfg._type or "") == "override" then
      map (b.mapAttrs (_: v: mkOverride cfg.priority v)) (pushDownProperties cfg.content)
    else
      [ cfg ];

  dischargeProperties =
    def:
    if (def._type or "") == "merge" then
      concatMap dischargeProperties def.contents
    else if (def._type or "") == "if" then
      if !b.isBool def.condition then
        throw "mkIf called with a non-Boolean condition"
      else if def.condition then
        dischargeProperties def.content
      else
        [ ]
    else
      [ def ];

  filterOverrides =
    defs:
    let
      isOverride = def: (def.value._type or "") == "override";
      getPrio = def: if isOverride def then def.value.priority else defaultOverridePriority;
      highest = b.foldl' (p: def: if getPrio def < p then getPrio def else p) 9999 defs;
      strip = def: if isOverride def then def // { value = def.value.content; } else def;
    in
    map strip (b.filter (def: getPrio def == highest) defs);

  # Definitions `{ file; value; }` of one option: discharge, keep the highest priority,
  # check the type, merge.
  mergeDefinitions =
    loc: type: defs:
    let
      discharged = concatMap (
        def:
        map (value: {
          inherit (def) file;
          inherit value;
        }) (dischargeProperties def.value)
      ) defs;
      filtered = filterOverrides discharged;
      bad = b.filter (def: !type.check def.value) filtered;
    in
    if filtered == [ ] then
      { isDefined = false; }
    else if bad != [ ] then
      throw "A definition for option `${showOption loc}' is not of type `${type.description}'. Definition values:\n- In `${(b.head bad).file}'"
    else
      {
        isDefined = true;
        value = type.merge loc filtered;
      };

  # --- options (lib/options.nix) ---
  isOption = x: b.isAttrs x && (x._type or "") == "option";
  mkOption = attrs: attrs // { _type = "option"; };
  mkEnableOption =
    name:
    mkOption {
      type = types.bool;
      default = false;
      example = true;
      description = "Whether to enable ${name}.";
    };
  mkPackageOption =
    pkgs: name:
    {
      nullable ? false,
      default ? name,
      example ? null,
      extraDescription ? "",
      pkgsText ? "pkgs",
    }:
    let
      path = toList default;
      text = concatStringsSep "." path;
    in
    mkOption (
      {
        type = if nullable then types.nullOr types.package else types.package;
        description = "The ${toString name} package to use.${extraDescription}";
      }
      // optionalAttrs (default != null) {
        default = attrByPath path (throw "${text} cannot be found in ${pkgsText}") pkgs;
        defaultText = literalExpression "${pkgsText}.${text}";
      }
      // optionalAttrs (example != null) { inherit example; }
    );
  literalExpression = text: {
    _type = "literalExpression";
    inherit text;
  };
  literalMD = text: {
    _type = "literalMD";
    inherit text;
  };

  mergeEqualOption =
    loc: defs:
    (b.foldl' (
      first: def:
      if def.value != first.value then
        throw "The option `${showOption loc}' has conflicting definition values:\n- In `${first.file}'\n- In `${def.file}'"
      else
        first
    ) (b.head defs) (b.tail defs)).value;

  mergeOneOption =
    loc: defs:
    if b.length defs == 1 then
      (b.head defs).value
    else
      throw "The option `${showOption loc}' is defined multiple times (in ${
        concatMapStringsSep ", " (d: "`${d.file}'") defs
      }), but it accepts only one definition.";

  mkOptionType =
    {
      name,
      description ? name,
      check ? (_: true),
      merge ? mergeEqualOption,
    }:
    {
      _type = "option-type";
      inherit
        name
        description
        check
        merge
        ;
    };

  # An attribute set of option declarations (nested namespaces allowed) and definitions
  # for it: the evaluated values, with unknown definitions reported.
  evalOptionTree =
    loc: decls: defs:
    let
      pushed = concatMap (
        def:
        if !b.isAttrs def.value then
          throw "A definition for `${showOption loc}' in `${def.file}' is not an attribute set, but `${showOption loc}' is a set of options."
        else
          map (value: {
            inherit (def) file;
            inherit value;
          }) (pushDownProperties def.value)
      ) defs;
      unknown = concatMap (
        def:
        map (name: {
          inherit name;
          inherit (def) file;
        }) (b.filter (name: !(decls ? ${name})) (b.attrNames def.value))
      ) pushed;
      defsOf =
        name:
        concatMap (
          def:
          optional (def.value ? ${name}) {
            inherit (def) file;
            value = def.value.${name};
          }
        ) pushed;
      values = b.mapAttrs (
        name: decl:
        if isOption decl then
          evalOption (loc ++ [ name ]) decl (defsOf name)
        else
          evalOptionTree (loc ++ [ name ]) decl (defsOf name)
      ) decls;
    in
    if unknown != [ ] then
      let
        u = b.head unknown;
      in
      throw "The option `${showOption (loc ++ [ u.name ])}' does not exist. Definition values:\n- In `${u.file}'"
    else
      values;

  evalOption =
    loc: opt: defs:
    let
      type = opt.type or types.unspecified;
      withDefault =
        optional (opt ? default) {
          file = "the default of ${showOption loc}";
          value = mkOptionDefault opt.default;
        }
        ++ defs;
      merged = mergeDefinitions loc type withDefault;
      value =
        if merged.isDefined then
          merged.value
        else
          throw "The option `${showOption loc}' was accessed but has no value defined.";
    in
    if opt ? apply then opt.apply value else value;

  # Deep merge of declaration trees; an option declared twice is an error.
  mergeDecls =
    loc: a: c:
    a
    // b.mapAttrs (
      name: v:
      if !(a ? ${name}) then
        v
      else if isOption v || isOption a.${name} then
        throw "The option `${showOption (loc ++ [ name ])}' is declared more than once."
      else
        mergeDecls (loc ++ [ name ]) a.${name} v
    ) c;

  # --- types (lib/types.nix) ---
  types = rec {
    unspecified = mkOptionType { name = "unspecified"; };
    raw = mkOptionType {
      name = "raw";
      merge = mergeOneOption;
    };
    bool = mkOptionType {
      name = "bool";
      description = "boolean";
      check = b.isBool;
    };
    int = mkOptionType {
      name = "int";
      description = "signed integer";
      check = b.isInt;
    };
    ints = {
      positive = mkOptionType {
        name = "positiveInt";
        description = "positive integer, meaning >0";
        check = x: b.isInt x && x > 0;
      };
      unsigned = mkOptionType {
        name = "unsignedInt";
        description = "unsigned integer, meaning >=0";
        check = x: b.isInt x && x >= 0;
      };
    };
    port = mkOptionType {
      name = "port";
      description = "16 bit unsigned integer";
      check = x: b.isInt x && x >= 0 && x <= 65535;
    };
    float = mkOptionType {
      name = "float";
      check = b.isFloat;
    };
    str = mkOptionType {
      name = "str";
      description = "string";
      check = b.isString;
    };
    lines = mkOptionType {
      name = "lines";
      description = "strings concatenated with \"\\n\"";
      check = b.isString;
      merge = _loc: defs: concatStringsSep "\n" (map (d: d.value) defs);
    };
    path = mkOptionType {
      name = "path";
      description = "absolute path";
      check = x: isStringLike x && hasPrefix "/" (toString x);
    };
    package = mkOptionType {
      name = "package";
      description = "package";
      check = x: isDerivation x || isStringLike x;
      merge = mergeOneOption;
    };
    enum =
      values:
      mkOptionType {
        name = "enum";
        description = "one of ${concatMapStringsSep ", " (v: ''"${toString v}"'') values}";
        check = x: b.elem x values;
      };
    nullOr =
      elemType:
      mkOptionType {
        name = "nullOr";
        description = "null or ${elemType.description}";
        check = x: x == null || elemType.check x;
        merge =
          loc: defs:
          let
            nulls = b.filter (d: d.value == null) defs;
          in
          if nulls == defs then
            null
          else if nulls == [ ] then
            elemType.merge loc defs
          else
            throw "The option `${showOption loc}' is defined both null and not null.";
      };
    either =
      t1: t2:
      mkOptionType {
        name = "either";
        description = "${t1.description} or ${t2.description}";
        check = x: t1.check x || t2.check x;
        merge =
          loc: defs:
          if b.all (d: t1.check d.value) defs then
            t1.merge loc defs
          else if b.all (d: t2.check d.value) defs then
            t2.merge loc defs
          else
            mergeOneOption loc defs;
      };
    oneOf = ts: b.foldl' either (b.head ts) (b.tail ts);
    listOf =
      elemType:
      mkOptionType {
        name = "listOf";
        description = "list of ${elemType.description}";
        check = x: b.isList x && b.all elemType.check x;
        merge = _loc: defs: concatMap (d: d.value) defs;
      };
    attrsOf =
      elemType:
      mkOptionType {
        name = "attrsOf";
        description = "attribute set of ${elemType.description}";
        check = b.isAttrs;
        merge =
          loc: defs:
          let
            pushed = concatMap (
              def:
              map (value: {
                inherit (def) file;
                inherit value;
              }) (pushDownProperties def.value)
            ) defs;
            names = unique (concatMap (def: b.attrNames def.value) pushed);
            merged = map (name: {
              inherit name;
              result = mergeDefinitions (loc ++ [ name ]) elemType (
                concatMap (
                  def:
                  optional (def.value ? ${name}) {
                    inherit (def) file;
                    value = def.value.${name};
                  }
                ) pushed
              );
            }) names;
          in
          b.listToAttrs (
            map (m: {
              inherit (m) name;
              value = m.result.value;
            }) (b.filter (m: m.result.isDefined) merged)
          );
      };
    # Values of any shape: attribute sets merge per attribute, other values must agree.
    anything = mkOptionType {
      name = "anything";
      merge =
        loc: defs:
        if b.all (d: b.isAttrs d.value && !isDerivation d.value) defs then
          (attrsOf anything).merge loc defs
        else
          mergeEqualOption loc defs;
    };
    # `submodule { options = { ... }; }` or a function of { name, ... } returning that.
    submodule =
      module:
      mkOptionType {
        name = "submodule";
        description = "submodule";
        check = b.isAttrs;
        merge =
          loc: defs:
          let
            m = if b.isFunction module then module { name = last loc; } else module;
          in
          evalOptionTree loc m.options defs;
      };
  };

  # --- evalModules (lib/modules.nix) ---
  evalModules =
    {
      modules,
      specialArgs ? { },
    }:
    let
      args =
        specialArgs
        // {
          inherit lib config options;
        };

      structuralKeys = [
        "imports"
        "options"
        "config"
        "meta"
        "_file"
        "key"
        "disabledModules"
        "freeformType"
      ];

      # -> { file; imports; options; config; }
      normalize =
        file: m:
        let
          loaded = if b.isPath m || b.isString m then import m else m;
          file' = if b.isPath m || b.isString m then toString m else file;
          value = if b.isFunction loaded then loaded args else loaded;
          structured = value ? options || value ? config;
          extra = b.filter (k: !(b.elem k structuralKeys)) (b.attrNames value);
        in
        if !b.isAttrs value then
          throw "module ${file'} is not an attribute set or a function returning one"
        else if structured && extra != [ ] then
          throw "Module `${file'}' has an unsupported attribute `${b.head extra}'. This is caused by introducing a top-level `config' or `options' attribute. Add configuration attributes immediately on the top level instead, or move all of them (namely: ${concatStringsSep " " extra}) into the explicit `config' attribute."
        else
          {
            file = value._file or file';
            imports = value.imports or [ ];
            options = value.options or { };
            config =
              if structured then
                value.config or { }
              else
                removeAttrs value [
                  "imports"
                  "meta"
                  "_file"
                  "key"
                  "disabledModules"
                ];
          };

      collect =
        file: m:
        let
          n = normalize file m;
        in
        [ n ] ++ concatMap (collect n.file) n.imports;

      all = concatMap (collect "<unknown-file>") modules;
      options = b.foldl' (acc: m: mergeDecls [ ] acc m.options) { } all;
      config = evalOptionTree [ ] options (
        map (m: {
          inherit (m) file;
          value = m.config;
        }) all
      );
    in
    {
      inherit config options;
    };

  lib = {
    inherit
      optional
      optionals
      optionalAttrs
      optionalString
      concatMap
      concatStringsSep
      concatMapStringsSep
      hasPrefix
      hasSuffix
      hasInfix
      mapAttrsToList
      genAttrs
      attrByPath
      toList
      unique
      last
      isDerivation
      isStringLike
      showOption
      getExe
      importTOML
      mkIf
      mkMerge
      mkOverride
      mkOptionDefault
      mkDefault
      mkForce
      isOption
      mkOption
      mkEnableOption
      mkPackageOption
      literalExpression
      literalMD
      mkOptionType
      mergeEqualOption
      mergeOneOption
      types
      evalModules
      ;
    inherit (b)
      elem
      filter
      attrNames
      mapAttrs
      ;
    # lib/fileset: records what package.nix selects; a missing path is an error as there.
    fileset = {
      unions =
        sets:
        map (
          x:
          if b.isPath x && !b.pathExists x then
            throw "lib.fileset.unions: ${toString x} does not exist"
          else
            x
        ) sets;
      maybeMissing = path: {
        _type = "maybeMissing";
        inherit path;
      };
      toSource =
        { root, fileset }:
        {
          _type = "fileset-source";
          inherit root fileset;
          outPath = toString root;
        };
    };
    licenses.gpl3Plus = {
      shortName = "gpl3Plus";
      spdxId = "GPL-3.0-or-later";
    };
    platforms = {
      linux = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      darwin = [
        "x86_64-darwin"
        "aarch64-darwin"
      ];
    };
  };
in
lib
