"""nbval runs the solved notebooks only: the student copies (generated into student/) stop at their blanks."""
collect_ignore_glob = ["student/*"]
