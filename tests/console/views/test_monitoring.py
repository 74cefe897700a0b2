"""console.views.monitoring: the windows offered."""

from byom.console.views import monitoring as view


def test_windows_and_their_buckets():
    assert view.window_index() == 1 and list(view.WINDOWS)[1] == "Last hour"
    assert all(window % bucket == 0 for window, bucket in view.WINDOWS.values())
