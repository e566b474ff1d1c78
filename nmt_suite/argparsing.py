"""The command-line parser of the suite's CLIs that report a usage error in one line."""
import argparse


class OneLineErrorParser(argparse.ArgumentParser):
    def error(self, message):
        """One line and exit status 2 (argparse also prints the usage; --help has it)."""
        self.exit(2, f"{self.prog}: error: {message}\n")
