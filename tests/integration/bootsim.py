"""A bootloader simulator for the A/B tests: applies the algorithm of the shipped boot scripts
(contrib/uboot/boot.cmd, contrib/grub/grub.cfg) to the same environment files otter uses, and
rewrites the simulated kernel command line, so that a test can "reboot". A slot whose kernel
does not load is not simulated here: tests/e2e/test_uboot.py runs the real script for that.

The environment is read and written with the bootloaders' own user-space tools (fw_printenv /
fw_setenv from libubootenv-tool, grub-editenv from grub-common), never with otter's code, so
every reboot is also an interoperability check. Each step below names the script line it
mirrors; keep the two in sync.

A boot here always reaches the kernel. In grub.cfg a kernel that cannot be loaded or started
takes the fallback entry, which reboots at once: for the counters that is one more boot that
never confirmed, which a test models by calling reboot() again without running otter."""

import os
import subprocess

GRUB_NEXT = {str(i): str(i + 1) for i in range(8)}  # otter_next: N -> N + 1, else 9


class NoBootableSlot(Exception):
    pass


class BootSim:
    def __init__(self, bootloader, env_path, cmdline_path, bootnames=("A", "B"), tries=3):
        """env_path: fw_env.config (uboot) or the grubenv file (grub)."""
        self.bootloader = bootloader
        self.env_path = str(env_path)
        self.cmdline_path = str(cmdline_path)
        self.bootnames = list(bootnames)
        self.tries = tries
        self.history = []

    # ---- environment access through the bootloader tools ----

    def read_env(self):
        if self.bootloader == "uboot":
            p = subprocess.run(["fw_printenv", "-c", self.env_path], capture_output=True,
                               text=True)
        else:
            p = subprocess.run(["grub-editenv", self.env_path, "list"], capture_output=True,
                               text=True)
        if p.returncode != 0:
            raise RuntimeError(f"reading the environment failed: {p.stderr}")
        env = {}
        for line in p.stdout.splitlines():
            k, sep, v = line.partition("=")
            if sep:
                env[k] = v
        return env

    def write_env(self, values):
        if self.bootloader == "uboot":
            # One fw_setenv -s run: one environment write, as saveenv is.
            script = os.path.join(os.path.dirname(self.cmdline_path), ".bootsim-script")
            with open(script, "w") as f:
                for k, v in values.items():
                    f.write(f"{k}={v}\n")  # libubootenv 0.3: name=value lines
            cmd = ["fw_setenv", "-c", self.env_path, "-s", script]
        else:
            cmd = ["grub-editenv", self.env_path, "set"] + [f"{k}={v}" for k, v in
                                                             values.items()]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"writing the environment failed: {p.stderr}")

    # ---- the scripts' algorithms ----

    def _uboot_pick(self, env):
        tries = str(self.tries)                                   # otter_tries=3 (a local)
        order = env.get("BOOT_ORDER") or "A B"                   # test -n ... || setenv
        left = {n: env.get(f"BOOT_{n}_LEFT") or tries for n in self.bootnames}
        slot = None                                               # otter_slot=
        for s in order.split():                                   # for otter_s in ...
            if slot is None and s in left and int(left[s]) > 0:   # test ... -gt 0
                left[s] = format(int(left[s]) - 1, "x")           # setexpr (hex, as U-Boot)
                slot = s
        saved = {"BOOT_ORDER": order}                              # locals are not saved
        saved.update({f"BOOT_{n}_LEFT": v for n, v in left.items()})
        if slot is None:                                          # no slot: grant tries
            saved.update({f"BOOT_{n}_LEFT": tries for n in self.bootnames})
            return None, saved                                    # saveenv; reset
        return slot, saved                                        # saveenv

    def _grub_pick(self, env):
        order = env.get("ORDER") or "A B"                         # if [ -z ORDER ] ...
        ok = {n: env.get(f"{n}_OK") or "1" for n in self.bootnames}
        tr = {n: env.get(f"{n}_TRY") or "0" for n in self.bootnames}
        slot = None                                               # set otter_slot=
        for s in order.split():                                   # for otter_s in ${ORDER}
            if slot is None and s in ok and ok[s] == "1":
                if int(tr[s]) < self.tries:                       # [ TRY -lt otter_tries ]
                    tr[s] = GRUB_NEXT.get(tr[s], "9")             # otter_next; set TRY
                    slot = s
        if slot is None:                                          # set A_TRY=0 ...
            return None, {f"{n}_TRY": "0" for n in self.bootnames}   # save_env; reboot
        return slot, {f"{n}_TRY": tr[n] for n in self.bootnames}  # save_env A_TRY B_TRY

    def reboot(self, max_resets=2):
        """Runs the boot script once (plus the resets it asks for); returns the bootname
        booted and writes the kernel command line."""
        for _ in range(max_resets + 1):
            env = self.read_env()
            if self.bootloader == "uboot":
                slot, saved = self._uboot_pick(env)
            else:
                slot, saved = self._grub_pick(env)
            self.write_env(saved)
            if slot is not None:
                with open(self.cmdline_path, "w") as f:
                    f.write(f"console=ttyS0 root=/dev/slot-{slot} rootwait otter.slot={slot}\n")
                self.history.append(slot)
                return slot
            self.history.append(None)
        raise NoBootableSlot("no slot could be booted")

    def pick_without_writing(self):
        """The slot the next boot would choose, leaving every file as it is."""
        env = self.read_env()
        for _ in range(2):
            if self.bootloader == "uboot":
                slot, saved = self._uboot_pick(env)
            else:
                slot, saved = self._grub_pick(env)
            if slot is not None:
                return slot
            env.update(saved)  # the script's reset, then the next boot
        return None
