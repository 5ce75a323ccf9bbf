"""lrrt"""
