"""concordat"""
