import os

# TensorFlow's C++ start-up chatter hides test output; errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_addoption(parser):
    parser.addoption(
        "--reliability-report",
        metavar="PATH",
        help="write the table of what the reliability tests (-m reliability) tried and survived into PATH "
        "(docs/RELIABILITY.md: between its table markers)",
    )
