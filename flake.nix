{
  description = "sitec: a pure configuration compiler for small fleets of Debian/Proxmox hosts";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.11";
    flake-utils.url = "github:numtide/flake-utils";
  };

  outputs = { self, nixpkgs, flake-utils }:
    flake-utils.lib.eachSystem [ "x86_64-linux" "aarch64-linux" ] (system:
      let
        pkgs = nixpkgs.legacyPackages.${system};

        # The daemons' own parsers and the tools around them, as scripts/test
        # installs them on Debian. ifupdown is Debian's own and not in nixpkgs:
        # the validator and end-to-end tests (root, namespaces) run on Debian.
        validators = with pkgs; [
          nftables wireguard-tools wireguard-go samba nginx iproute2 openssl
          (python3.withPackages (p: [ p.pyyaml ])) shellcheck rsync openssh
          iputils util-linux
        ];

        version = (builtins.fromTOML (builtins.readFile ./Cargo.toml)).package.version;

        # The host agent push brings to hosts: one static x86_64 executable
        # (musl), whatever this machine runs: the hosts are x86_64.
        agent = pkgs.pkgsCross.musl64.pkgsStatic.rustPlatform.buildRustPackage {
          pname = "sitec-agent";
          inherit version;
          src = self;
          cargoLock.lockFile = ./Cargo.lock;
          cargoBuildFlags = [ "-p" "sitec-agent" "--bin" "sitec-agent" ];
          doCheck = false;
        };

        sitec = pkgs.rustPlatform.buildRustPackage {
          pname = "sitec";
          inherit version;
          src = self;
          cargoLock.lockFile = ./Cargo.lock;
          nativeBuildInputs = [ pkgs.installShellFiles ];
          # The whole suite needs root, network namespaces and the validators;
          # checks.tests runs the suites that need none of them.
          doCheck = false;
          postInstall = ''
            install -Dm755 compiler/host/push $out/bin/sitec-push
            install -Dm755 ${agent}/bin/sitec-agent $out/share/sitec/sitec-agent
            installManPage docs/sitec.1
            installShellCompletion --cmd sitec \
              --bash <($out/bin/sitec completions bash) \
              --zsh <($out/bin/sitec completions zsh) \
              --fish <($out/bin/sitec completions fish)
          '';
          meta.mainProgram = "sitec";
        };

        app = name: script: {
          type = "app";
          program = "${pkgs.writeShellScript name script}";
        };
      in
      {
        packages.default = sitec;

        apps = {
          # nix run .#compile -- homelab
          compile = app "sitec-compile" ''exec ${sitec}/bin/sitec compile "$@"'';
          # nix run .#push -- homelab all
          push = app "sitec-push" ''
            PATH=${pkgs.lib.makeBinPath [ pkgs.rsync pkgs.openssh pkgs.coreutils pkgs.gawk pkgs.gnused ]}:$PATH
            SITEC_AGENT=${sitec}/share/sitec/sitec-agent exec ${sitec}/bin/sitec-push "$@"
          '';
          default = app "sitec" ''exec ${sitec}/bin/sitec "$@"'';
        };

        devShells.default = pkgs.mkShell {
          packages = [ pkgs.cargo pkgs.rustc pkgs.clippy pkgs.rustfmt ] ++ validators;
        };

        checks = {
          # out/ is what the sites compile to.
          compile = pkgs.runCommand "sitec-compile-check" { } ''
            ${sitec}/bin/sitec --root ${self} compile --check
            touch $out
          '';
          # The suites that need no root and no validator.
          tests = sitec.overrideAttrs (old: {
            pname = "sitec-tests";
            doCheck = true;
            cargoTestFlags = [
              "--test" "snapshots" "--test" "determinism" "--test" "diagnostics"
              "--test" "plan" "--test" "robustness"
            ];
          });
        };
      });
}
